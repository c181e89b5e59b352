"""The authorization server's endpoints, built from the SDK's handlers (mcp.server.auth).

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (CIMD and iss supported)
    GET  /authorize                                 the SDK's checks, then our sign-in page
    POST /token                                     code (PKCE S256) and refresh grants, resource-bound
    POST /register                                  RFC 7591 dynamic client registration
    POST /revoke                                    RFC 7009 revocation (public clients too)

Around the SDK's handlers: a per-IP limit on /authorize and /register; the RFC 8707 `resource` of
a token request checked against ours; client secrets compared by digest; a request the SDK
refuses at /authorize shown as a page to a browser; and a store failure answered 503.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError
from mcp.server.auth.settings import ClientRegistrationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthMetadata
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from billing.errors import StoreError
from billing.http import oauth_html as html
from billing.http.ip_rate_limit import PerIPLimiter
from billing.http.oauth_client_auth import HashedSecretAuthenticator
from billing.oauth.clients import SUPPORTED_SCOPES
from billing.oauth.metadata_doc import MetadataDocumentError, is_document_client_id
from billing.oauth.provider import KamiyoAccessToken, KamiyoRefreshToken, OAuthProvider, same_resource

logger = logging.getLogger(__name__)

METADATA_PATH = "/.well-known/oauth-authorization-server"
AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTHORIZE_RATE_PER_MINUTE = 60
TOKEN_RATE_PER_MINUTE = 120

Handler = Callable[[Request], Awaitable[Response]]


def authorization_server_metadata(issuer: str, *, documentation: str | None = None) -> OAuthMetadata:
    """RFC 8414 metadata; `issuer` is the public URL exactly (no trailing slash), as RFC 9728 names it."""
    base = issuer.rstrip("/")
    # Validated from strings so the model keeps the issuer exactly (no trailing slash added).
    return OAuthMetadata.model_validate({
        "issuer": issuer, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
        "registration_endpoint": f"{base}/register", "revocation_endpoint": f"{base}/revoke",
        "scopes_supported": list(SUPPORTED_SCOPES), "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS, "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": True, "authorization_response_iss_parameter_supported": True,
        "service_documentation": documentation,
    })


def oauth_server_routes(provider: Callable[[], OAuthProvider], *, issuer: str, register_rate_per_minute: int,
                        documentation: str | None = None, clock: Callable[[], float] = time.time) -> list[Route]:
    metadata = authorization_server_metadata(issuer, documentation=documentation)
    authorize_limiter = PerIPLimiter(AUTHORIZE_RATE_PER_MINUTE, clock=clock)
    token_limiter = PerIPLimiter(TOKEN_RATE_PER_MINUTE, clock=clock)
    register_limiter = PerIPLimiter(register_rate_per_minute, clock=clock)

    async def authorize(request: Request) -> Response:
        if (retry := authorize_limiter.hit(_ip(request))) is not None:
            return html.page("Slow down", html.error_body(f"Too many sign-in attempts from this network; wait "
                                                          f"{retry} seconds and try again."), status=429)
        current = provider()
        params = request.query_params if request.method == "GET" else await request.form()
        client_id = params.get("client_id")
        if isinstance(client_id, str) and is_document_client_id(client_id):
            try:
                await current.documents.get(client_id)
            except MetadataDocumentError as exc:
                return _refused_page(request, "invalid_request", f"the app's client id cannot be used: {exc.reason}")
        response = await AuthorizationHandler(current).handle(request)
        if response.status_code == 400 and "text/html" in request.headers.get("accept", ""):
            body = json.loads(bytes(response.body))
            return _refused_page(request, str(body.get("error")), str(body.get("error_description") or ""))
        return response

    async def token(request: Request) -> Response:
        if (retry := token_limiter.hit(_ip(request))) is not None:
            return _oauth_error(429, "slow_down", f"too many token requests; retry in {retry} s")
        current = provider()
        resource = (await request.form()).get("resource")
        if isinstance(resource, str) and not same_resource(resource, current.resource):
            return _oauth_error(400, "invalid_target", f"this server issues tokens only for {current.resource}")
        handler = TokenHandler(current, HashedSecretAuthenticator(current))
        response: Response = await handler.handle(request)
        return response

    async def register(request: Request) -> Response:
        if (retry := register_limiter.hit(_ip(request))) is not None:
            return _oauth_error(429, "slow_down", f"too many registrations from this address; retry in {retry} s")
        options = ClientRegistrationOptions(enabled=True, default_scopes=list(SUPPORTED_SCOPES))
        return await RegistrationHandler(provider(), options).handle(request)

    async def revoke(request: Request) -> Response:
        current = provider()
        try:
            client = await HashedSecretAuthenticator(current).authenticate_request(request)
        except AuthenticationError as exc:
            return _oauth_error(401, "invalid_client", exc.message)
        form = await request.form()
        value, hint = form.get("token"), form.get("token_type_hint")
        if not isinstance(value, str) or not value:
            return _oauth_error(400, "invalid_request", "the token to revoke is required")
        found: KamiyoAccessToken | KamiyoRefreshToken | None
        if hint == "refresh_token":
            found = await current.load_refresh_token(client, value) or await current.load_access_token(value)
        else:
            found = await current.load_access_token(value) or await current.load_refresh_token(client, value)
        if found is not None and found.client_id == client.client_id:
            await current.revoke_token(found)
        return Response(status_code=200, headers=NO_STORE)  # RFC 7009 §2.2: unknown tokens too

    return [
        Route(METADATA_PATH, _Only({"GET", "HEAD", "OPTIONS"},
                                   _cors(request_response(MetadataHandler(metadata).handle), ["GET", "OPTIONS"]))),
        Route("/authorize", _Only({"GET", "POST"}, _limited_body(request_response(_store_guard(authorize))))),
        *(Route(path, _Only({"POST", "OPTIONS"}, _cors(_limited_body(request_response(_store_guard(handler))),
                                                       ["POST", "OPTIONS"])))
          for path, handler in (("/token", token), ("/register", register), ("/revoke", revoke))),
    ]


class _Only:
    """An endpoint for every method: the allowed ones reach `app`, others get 405 with `Allow` (a route that
    matched only its own methods would let the app's catch-all mount answer the rest with a plain 404)."""

    def __init__(self, methods: set[str], app: ASGIApp) -> None:
        self._methods = methods
        self._allow = ", ".join(sorted(methods))
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in self._methods:
            await self._app(scope, receive, send)
            return
        answer = _oauth_error(405, "invalid_request", f"{scope['method']} is not allowed here; use {self._allow}",
                              headers={"Allow": self._allow})
        await answer(scope, receive, send)


def _store_guard(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except StoreError:
            logger.exception("oauth: the store failed on %s %s", request.method, request.url.path)
            return _oauth_error(503, "temporarily_unavailable", "the account store is unavailable; retry shortly",
                                headers={"Retry-After": "5"})
    return guarded


def _refused_page(request: Request, error: str, description: str) -> Response:
    if "text/html" not in request.headers.get("accept", ""):
        return _oauth_error(400, error, description)
    message = f"The app sent an authorization request this server cannot accept: {description or error}."
    return html.page("Cannot sign in", html.error_body(message), status=400)


def _oauth_error(status: int, error: str, description: str, *, headers: dict[str, str] | None = None
                 ) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={**NO_STORE, **(headers or {})})


def _cors(app: ASGIApp, methods: list[str]) -> ASGIApp:
    return CORSMiddleware(app=app, allow_origins="*", allow_methods=methods,
                          allow_headers=["mcp-protocol-version", "authorization", "content-type"])


def _limited_body(app: ASGIApp) -> ASGIApp:
    return RequestBodyLimitMiddleware(app, DEFAULT_MAX_REQUEST_BODY_SIZE)


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"

