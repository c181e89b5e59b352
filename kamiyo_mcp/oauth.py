"""The OAuth authorization server wired into the app: its endpoints, the sign-in pages, one provider.

    oauth = OAuthWiring(runtime, stripe_gateway)
    routes = [*oauth.routes(), ...]          # when KAMIYO_OAUTH_ENABLED (the default)

The provider and the sign-in flow are built from the runtime's open store when first needed (and
again if the runtime reopened); the metadata-document cache lives as long as the app.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.routing import Route

from billing.http.browser_session import BrowserSessions
from billing.http.oauth_pages import PageDeps, oauth_page_routes
from billing.http.oauth_routes import oauth_server_routes
from billing.oauth.metadata_doc import MetadataDocuments
from billing.oauth.provider import OAuthProvider
from billing.oauth.sign_in import SignIn
from billing.stripe_gateway import StripeGateway
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.secret_file import resolve_jwt_secret

SIGN_IN_PATH = "/oauth/sign-in"


class OAuthWiring:
    def __init__(self, runtime: Runtime, gateway: Callable[[], StripeGateway | None], *,
                 mail_queued: Callable[[], None] = lambda: None) -> None:
        self.runtime = runtime
        self._gateway = gateway
        self._mail_queued = mail_queued
        self._provider: OAuthProvider | None = None
        self._sign_in: SignIn | None = None
        self._documents: MetadataDocuments | None = None

    @property
    def issuer(self) -> str:
        """The authorization server's issuer: the public URL, exactly as the resource metadata names it."""
        return self.runtime.settings.public_url

    def documents(self) -> MetadataDocuments:
        if self._documents is None:
            config = self.runtime.settings.oauth
            self._documents = MetadataDocuments(ca_file=config.metadata_ca_file,
                                                private_hosts=config.metadata_private_hosts)
        return self._documents

    def provider(self) -> OAuthProvider:
        """The provider over the store open now."""
        store = self.runtime.store
        if self._provider is None or self._provider.store is not store:
            settings = self.runtime.settings
            self._provider = OAuthProvider(
                store, self.runtime.codec, issuer=self.issuer, resource=settings.resource_url, config=settings.oauth,
                documents=self.documents(), sign_in_url=settings.public_url + SIGN_IN_PATH, clock=self.runtime.clock)
        return self._provider

    def sign_in(self) -> SignIn:
        provider = self.provider()
        if self._sign_in is None or self._sign_in.provider is not provider:
            settings = self.runtime.settings
            self._sign_in = SignIn(provider.store, self.runtime.authority, provider, public_url=settings.public_url,
                                   support_email=settings.billing.support_email, config=settings.oauth,
                                   clock=self.runtime.clock)
        return self._sign_in

    def routes(self) -> list[Route]:
        settings = self.runtime.settings
        if not settings.oauth.enabled:
            return []
        sessions = BrowserSessions(lambda: resolve_jwt_secret(settings),
                                   secure=urlsplit(settings.public_url).scheme == "https")
        deps = PageDeps(sign_in=self.sign_in, sessions=sessions, billing=settings.billing, gateway=self._gateway,
                        public_url=settings.public_url, rate_per_minute=settings.oauth.sign_in_rate_per_minute,
                        mail_queued=self._mail_queued)
        return [
            *oauth_server_routes(self.provider, issuer=self.issuer,
                                 register_rate_per_minute=settings.oauth.register_rate_per_minute,
                                 documentation=settings.public_url + "/pricing"),
            *oauth_page_routes(deps),
        ]
