"""The person's side of an authorization: sign in, see what the app gets, approve or refuse.

    sign_in = SignIn(store, authority, provider, public_url=..., support_email=..., config=...)
    await sign_in.send_link(request_id, "me@example.com")          # same work for every address
    request_id = await sign_in.use_link(link, session_hash)         # POST from the mailed link's page
    await sign_in.use_secret(request_id, token_or_claim_code, session_hash)   # the alternative
    view = await sign_in.consent(request_id, session_hash)          # client, redirect host, tier (or no plan)
    url = await sign_in.approve(request_id, session_hash)           # back to the app with the code

Signing in binds the request to the browser session that proved the identity; only that session
can approve. Which subscription pays: a mailed link proves an email, so every subscription of
that email counts; a token or claim code proves one customer, so only that customer's count. The
best entitled one wins (highest tier, then newest). Refusals are `SignInError`s with words a
person can act on; none says whether an email belongs to a customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from mcp.server.auth.provider import construct_redirect_uri

from billing.authority import Authority
from billing.checkout_request import check_email
from billing.claims import claim_hash, is_claim_code
from billing.config import OAuthConfig
from billing.errors import BillingError, InvalidRequestError, InvalidTokenError
from billing.mail.sign_in import queue_sign_in_mail
from billing.oauth.clients import KamiyoClient, redirect_host, shown_name
from billing.oauth.provider import OAuthProvider, entitlement_problem
from billing.oauth.secret import CODE_PREFIX, LINK_PREFIX, REQUEST_PREFIX, looks_like, new_secret, secret_hash
from billing.store import Store
from billing.store.connection import Connection
from billing.store.oauth_records import Entitlement, PendingRequest, SignInLink, StoredCode
from billing.store.records import AuditEntry
from billing.tiers import TIERS

HOUR = 3600


class SignInError(BillingError):
    """A step that cannot go on; `status` and `code` for the page, `message` for the person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class ConsentView:
    request_id: str
    client: KamiyoClient
    client_name: str
    redirect_host: str
    email: str
    entitlement: Entitlement | None  # None: no subscription grants access; show the plans


def best_entitlement(entitlements: list[Entitlement], now: int) -> Entitlement | None:
    """The subscription that pays: entitled now, highest tier, newest (the list comes newest first)."""
    live = [e for e in entitlements if entitlement_problem(e, now) is None]
    return max(live, key=lambda e: TIERS[e.tier].rank, default=None)


def secret_from_paste(raw: str) -> str:
    """A pasted token or claim code, also from a whole claim link (`.../claim?code=...`)."""
    value = raw.strip()
    if value.startswith(("http://", "https://")):
        codes = parse_qs(urlsplit(value).query).get("code") or [""]
        value = codes[0]
    return value.removeprefix("Bearer ").strip()


class SignIn:
    def __init__(self, store: Store, authority: Authority, provider: OAuthProvider, *, public_url: str,
                 support_email: str, config: OAuthConfig, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.authority = authority
        self.provider = provider
        self.public_url = public_url.rstrip("/")
        self.support_email = support_email
        self.config = config
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    async def pending(self, request_id: str) -> tuple[PendingRequest, KamiyoClient]:
        """An open request and its client.

        Raises:
            SignInError: unknown, finished or expired request, or its client is gone.
        """
        request = await self.store.oauth_request(request_id) if looks_like(request_id, REQUEST_PREFIX) else None
        return self._open(request), await self._client(request_id if request is None else request.client_id)

    async def send_link(self, request_id: str, raw_email: str) -> str:
        """Mail a sign-in link for the request to `raw_email`; returns the normalized address.

        The same statements run for every address: nothing here looks up whether it is a customer.

        Raises:
            SignInError: not an email address (400), too many mails to it this hour (429), or a dead request.
        """
        try:
            email = check_email(raw_email)
        except InvalidRequestError:
            raise SignInError(400, "invalid_email", "Enter the email address you subscribed with.") from None
        request, client = await self.pending(request_id)
        now = self.now()
        async with self.store.transaction() as db:
            sent = await self.store.sign_in_links_since(db, email, now - HOUR)
            if sent >= self.config.sign_in_mails_per_email_per_hour:
                raise SignInError(429, "too_many_sign_in_mails",
                                  "Several sign-in emails were sent to this address in the last hour. Use the "
                                  "newest one, or try again later.")
            await create_sign_in_link(self.store, db, request=request, email=email, client=client, now=now)
        return email

    async def link(self, link: str) -> tuple[SignInLink, PendingRequest, KamiyoClient]:
        """What a mailed link's page shows before anything is spent (a GET never signs in)."""
        found = await self.store.sign_in_link(secret_hash(link)) if looks_like(link, LINK_PREFIX) else None
        found = self._live_link(found)
        request, client = await self.pending(found.request_id)
        return found, request, client

    async def use_link(self, link: str, session_hash: str) -> str:
        """Spend a mailed link and sign its request in, in this browser session; returns the request id."""
        now = self.now()
        async with self.store.transaction() as db:
            found = await self.store.sign_in_link(secret_hash(link), db) if looks_like(link, LINK_PREFIX) else None
            found = self._live_link(found)
            request = self._open(await self.store.oauth_request(found.request_id, db))
            assert found.link_hash is not None  # a live link was sealed when its mail was sent
            if not await self.store.use_sign_in_link(db, found.link_hash, now=now):
                raise _used_link()
            user_id = await self.store.find_user_id(found.email)
            await self.store.sign_in_request(db, request.request_id, email=found.email, user_id=user_id,
                                             subscription_id=None, session_hash=session_hash, method="email", now=now)
            await self.store.audit_in(db, AuditEntry("oauth", "oauth.sign_in", user_id,
                                                     f"client={request.client_id} method=email"), now=now)
        return request.request_id

    async def use_secret(self, request_id: str, raw: str, session_hash: str) -> None:
        """Sign in with a KAMIYO token or a claim code instead of a mailed link.

        Raises:
            SignInError: the value is neither, or does not prove a live account.
        """
        secret = secret_from_paste(raw)
        if secret.count(".") == 2:
            try:
                identity = await self.authority.authenticate(secret)
            except InvalidTokenError as exc:
                raise SignInError(400, "invalid_token", f"That token is not valid: {exc.reason}.") from None
            state = identity.state
            if state.revoked_at is not None:
                raise SignInError(400, "token_revoked", "That token was revoked. Sign in with your email instead.")
            if state.credential == "oauth":
                raise SignInError(400, "invalid_token", "That is an app's access token; paste your own KAMIYO token.")
            await self._sign_in(request_id, email=state.email, user_id=state.user_id, method="token",
                                session_hash=session_hash, subscription_id=state.subscription_id)
            return
        if is_claim_code(secret):
            async with self.store.transaction() as db:
                claim = await self.store.claim_for_redemption(db, claim_hash(secret))
            if claim is None or claim.redeemed_at is not None or claim.expires_at <= self.now():
                raise SignInError(400, "invalid_claim_code", "That claim code is not valid any more (it was used or "
                                                             "has expired). Sign in with your email instead.")
            await self._sign_in(request_id, email=claim.email, user_id=claim.user_id, method="claim_code",
                                session_hash=session_hash, subscription_id=claim.subscription_id)
            return
        raise SignInError(400, "unrecognised_secret", "Paste your KAMIYO token (it has three parts separated by "
                                                      "dots) or the claim link from your welcome email.")

    async def _sign_in(self, request_id: str, *, email: str, user_id: str, method: str, session_hash: str,
                       subscription_id: str) -> None:
        now = self.now()
        async with self.store.transaction() as db:
            request = self._open(await self.store.oauth_request(request_id, db)
                                 if looks_like(request_id, REQUEST_PREFIX) else None)
            await self.store.sign_in_request(db, request.request_id, email=email, user_id=user_id,
                                             subscription_id=subscription_id, session_hash=session_hash,
                                             method=method, now=now)
            await self.store.audit_in(db, AuditEntry("oauth", "oauth.sign_in", user_id,
                                                     f"client={request.client_id} method={method}"), now=now)

    async def consent(self, request_id: str, session_hash: str) -> ConsentView:
        """What the consent page shows to the session that signed in.

        Raises:
            SignInError: not signed in in this browser (401), or a dead request.
        """
        request, client = await self.pending(request_id)
        self._check_session(request, session_hash)
        assert request.email is not None
        return ConsentView(request.request_id, client, shown_name(client), redirect_host(request.redirect_uri),
                           request.email, await self._entitlement(request))

    async def _entitlement(self, request: PendingRequest, db: Connection | None = None) -> Entitlement | None:
        if request.signed_in_by == "email" and request.email is not None:
            candidates = await self.store.entitlements_for_email(request.email, db)
        else:
            candidates = await self.store.entitlements_for_user(request.user_id or "", db)
        return best_entitlement(candidates, self.now())

    async def approve(self, request_id: str, session_hash: str) -> str:
        """Issue the code and return where the browser goes: the app's redirect URI with code, state and iss."""
        now = self.now()
        async with self.store.transaction() as db:
            request = self._open(await self.store.oauth_request(request_id, db)
                                 if looks_like(request_id, REQUEST_PREFIX) else None)
            self._check_session(request, session_hash)
            entitlement = await self._entitlement(request, db)
            if entitlement is None:
                raise SignInError(402, "no_subscription", "No subscription of this account grants access; choose a "
                                                          "plan first.")
            if not await self.store.complete_request(db, request.request_id, now=now):
                raise _finished()
            code = new_secret(CODE_PREFIX)
            await self.store.insert_oauth_code(db, StoredCode(
                secret_hash(code), request.client_id, entitlement.user_id, entitlement.subscription_id,
                request.redirect_uri, request.redirect_uri_explicit, request.code_challenge, request.scopes,
                request.resource, now, now + self.config.code_seconds, None, None))
            await self.store.audit_in(db, AuditEntry("oauth", "oauth.consent", entitlement.subscription_id,
                                                     f"client={request.client_id} tier={entitlement.tier}"), now=now)
        return construct_redirect_uri(request.redirect_uri, code=code, state=request.state, iss=self.provider.issuer)

    async def deny(self, request_id: str, session_hash: str) -> str:
        """Close the request and return the app's redirect URI with `access_denied`."""
        now = self.now()
        async with self.store.transaction() as db:
            request = self._open(await self.store.oauth_request(request_id, db)
                                 if looks_like(request_id, REQUEST_PREFIX) else None)
            self._check_session(request, session_hash)
            await self.store.complete_request(db, request.request_id, now=now)
            await self.store.audit_in(db, AuditEntry("oauth", "oauth.deny", request.user_id,
                                                     f"client={request.client_id}"), now=now)
        return construct_redirect_uri(request.redirect_uri, error="access_denied",
                                      error_description="the person declined to connect the app",
                                      state=request.state, iss=self.provider.issuer)

    # ---- checks ----------------------------------------------------------------------------

    def _open(self, request: PendingRequest | None) -> PendingRequest:
        if request is None:
            raise SignInError(404, "unknown_request", "This sign-in page is not valid. Start again from your app.")
        if request.completed_at is not None:
            raise _finished()
        if request.expires_at <= self.now():
            raise SignInError(410, "request_expired", "This sign-in took too long and expired. Start again from "
                                                      "your app.")
        return request

    def _live_link(self, link: SignInLink | None) -> SignInLink:
        if link is None or link.link_hash is None:
            raise SignInError(404, "unknown_link", "This sign-in link is not valid. Use the newest link we mailed "
                                                   "you, exactly as sent.")
        if link.used_at is not None:
            raise _used_link()
        if link.expires_at <= self.now():
            raise SignInError(410, "link_expired", "This sign-in link has expired (links work for 15 minutes). "
                                                   "Start again from your app.")
        return link

    def _check_session(self, request: PendingRequest, session_hash: str) -> None:
        if request.signed_in_at is None or request.session_hash != session_hash or request.email is None:
            raise SignInError(401, "not_signed_in", "Sign in first (in this browser) to approve this app.")

    async def _client(self, client_id: str) -> KamiyoClient:
        client = await self.provider.get_client(client_id)
        if client is None:
            raise SignInError(400, "unknown_client", "The app that sent you here is no longer known. Start again "
                                                     "from your app.")
        return client


def _used_link() -> SignInError:
    return SignInError(410, "link_used", "This sign-in link was already used; each link works once. Start again "
                                         "from your app if you still need to sign in.")


def _finished() -> SignInError:
    return SignInError(410, "request_finished", "This sign-in is already finished. Start again from your app.")


async def create_sign_in_link(store: Store, db: Connection, *, request: PendingRequest, email: str,
                              client: KamiyoClient, now: int) -> None:
    """A single-use sign-in link for `request`, reserved with its mail to `email`; the link's secret is made
    when the mail is sent (billing/mail/sign_in.py), so no row ever holds it."""
    link_id = await store.reserve_sign_in_link(db, request_id=request.request_id, email=email, now=now,
                                               expires_at=request.expires_at)
    await queue_sign_in_mail(db, link_id=link_id, recipient=email, client_name=shown_name(client),
                             redirect_host=redirect_host(request.redirect_uri), now=now)
