"""The SDK's `OAuthAuthorizationServerProvider` over our store: clients, codes, grants, refresh, revocation.

    provider = OAuthProvider(store, codec, issuer=..., resource=..., config=..., documents=..., sign_in_url=...)
    routes = oauth_routes(provider, ...)       # billing/http/oauth_routes.py: the SDK's handlers

The SDK's handlers check the request's shape, PKCE, redirect URI and expiry; this class decides
the rest inside one write transaction per token request: a code or refresh token is spent once, a
spent one presented again ends its grant (RFC 9700 §4.14: reuse means theft), and a grant whose
subscription no longer grants access mints nothing. An access token is a JWT for the resource
(RFC 8707) and a `tokens` row of kind 'oauth', so every call it makes is judged by the authority's
one statement.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from billing.access import entitlement_ended
from billing.config import OAuthConfig
from billing.errors import InvalidTokenError
from billing.oauth.clients import KIND_REGISTERED, SCOPE, KamiyoClient, check_client_metadata
from billing.oauth.metadata_doc import MetadataDocumentError, MetadataDocuments, is_document_client_id
from billing.oauth.secret import CODE_PREFIX, REFRESH_PREFIX, REQUEST_PREFIX, looks_like, new_grant_id, new_secret
from billing.oauth.secret import secret_hash as hashed
from billing.store import Store
from billing.store.connection import Connection
from billing.store.oauth_records import Entitlement, PendingRequest, StoredClient, StoredGrant, StoredRefresh
from billing.store.records import AuditEntry, NewToken
from billing.tiers import is_tier
from billing.tokens import TokenCodec, token_hash

_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
KIND_OPERATOR_GRANT = "grant"  # subscriptions.kind of an operator grant (`kamiyo-mcp token issue`)
REUSED = ("this refresh token was already used, so every token of this sign-in was revoked to be safe; "
          "sign in again")


class KamiyoAuthorizationCode(AuthorizationCode):
    code_hash: str


class KamiyoRefreshToken(RefreshToken):
    token_hash: str
    grant_id: str


class KamiyoAccessToken(AccessToken):
    grant_id: str


class OAuthProvider:
    def __init__(self, store: Store, codec: TokenCodec, *, issuer: str, resource: str, config: OAuthConfig,
                 documents: MetadataDocuments, sign_in_url: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.codec = codec
        self.issuer = issuer
        self.resource = resource
        self.config = config
        self.documents = documents
        self._sign_in_url = sign_in_url
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    # ---- clients ---------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> KamiyoClient | None:
        if is_document_client_id(client_id):
            try:
                return await self.documents.get(client_id)
            except MetadataDocumentError:
                return None
        if len(client_id) > 200:
            return None
        row = await self.store.oauth_client(client_id)
        if row is None or row.kind != KIND_REGISTERED:
            return None
        return KamiyoClient.model_validate({**json.loads(row.metadata), "client_id": row.client_id,
                                            "kind": KIND_REGISTERED})

    async def client_secret_hash(self, client_id: str) -> str | None:
        row = await self.store.oauth_client(client_id)
        return None if row is None else row.secret_hash

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        check_client_metadata(client_info, document=False)
        if client_info.client_id is None or is_document_client_id(client_info.client_id):
            raise RegistrationError("invalid_client_metadata", "the client id must not be a URL")
        secret = client_info.client_secret
        metadata = client_info.model_dump(mode="json", exclude_none=True,
                                          exclude={"client_secret", "client_id", "client_secret_expires_at"})
        now = self.now()
        await self.store.register_oauth_client(StoredClient(
            client_info.client_id, KIND_REGISTERED, client_info.client_name, json.dumps(metadata),
            hashed(secret) if secret else None, now, now), now=now)

    # ---- /authorize ------------------------------------------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Record the request and send the browser to the sign-in page."""
        if params.resource is not None and not same_resource(params.resource, self.resource):
            raise AuthorizeError("invalid_target", f"this server issues tokens only for the resource {self.resource}")
        if not _S256_CHALLENGE.match(params.code_challenge):
            raise AuthorizeError("invalid_request",
                                 "code_challenge must be an S256 challenge (43 base64url characters)")
        now = self.now()
        request_id = new_secret(REQUEST_PREFIX)
        await self.store.create_oauth_request(PendingRequest(
            request_id, client.client_id or "", str(params.redirect_uri), params.redirect_uri_provided_explicitly,
            params.code_challenge, params.state, " ".join(params.scopes or [SCOPE]), self.resource, now,
            now + self.config.request_seconds))
        if isinstance(client, KamiyoClient) and client.kind != KIND_REGISTERED:
            async with self.store.transaction() as db:
                await self.store.remember_document_client(
                    db, client.client_id or "", client.client_name,
                    client.model_dump_json(exclude_none=True, exclude={"kind"}), now=now)
        return f"{self._sign_in_url}?request={request_id}"

    # ---- the token endpoint ----------------------------------------------------------------

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str
                                      ) -> KamiyoAuthorizationCode | None:
        if not looks_like(authorization_code, CODE_PREFIX):
            return None
        row = await self.store.oauth_code(hashed(authorization_code))
        if row is None or row.client_id != client.client_id:
            return None
        return KamiyoAuthorizationCode(
            code=authorization_code, scopes=row.scopes.split(), expires_at=row.expires_at, client_id=row.client_id,
            code_challenge=row.code_challenge, redirect_uri=AnyUrl(row.redirect_uri),
            redirect_uri_provided_explicitly=row.redirect_uri_explicit, resource=row.resource, subject=row.user_id,
            code_hash=row.code_hash)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: KamiyoAuthorizationCode) -> OAuthToken:
        now = self.now()
        failure: TokenError | None = None
        async with self.store.transaction() as db:
            row = await self.store.oauth_code(authorization_code.code_hash, db)
            if row is None:
                failure = TokenError("invalid_grant", "authorization code does not exist")
            elif row.used_at is not None:
                # A code presented twice was intercepted: end what its first exchange created.
                if row.grant_id is not None:
                    await self.store.end_oauth_grant(db, row.grant_id, "authorization code replayed", now=now)
                await self.store.audit_in(db, AuditEntry("oauth", "oauth.code_replay", row.grant_id or row.client_id,
                                                       f"client={row.client_id}"), now=now)
                failure = TokenError("invalid_grant", "this authorization code was already used; the tokens it "
                                                      "gave were revoked")
            else:
                ended = await self._ended(db, row.subscription_id, now)
                if ended is not None:
                    failure = TokenError("invalid_grant", f"no token can be issued: {ended}")
                else:
                    grant = StoredGrant(new_grant_id(), row.client_id, row.user_id, row.subscription_id, row.scopes,
                                        row.resource, now, None, None, None)
                    await self.store.insert_oauth_grant(db, grant)
                    if await self.store.spend_oauth_code(db, row.code_hash, grant.grant_id, now=now):
                        tokens = await self._mint(db, grant, client, now)
                        await self.store.audit_in(db, AuditEntry("oauth", "oauth.grant", grant.grant_id,
                                                               f"client={grant.client_id} "
                                                               f"subscription={grant.subscription_id}"), now=now)
                        return tokens
                    failure = TokenError("invalid_grant", "authorization code does not exist")
        # Raised outside the transaction: the SDK's errors are frozen dataclasses, which a context
        # manager re-raising them cannot give a traceback (FrozenInstanceError, a 500).
        assert failure is not None
        raise failure

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str
                                 ) -> KamiyoRefreshToken | None:
        if not looks_like(refresh_token, REFRESH_PREFIX):
            return None
        found = await self.store.oauth_refresh(hashed(refresh_token))
        if found is None or found[1].client_id != client.client_id:
            return None
        refresh, grant = found
        return KamiyoRefreshToken(token=refresh_token, client_id=grant.client_id, scopes=grant.scopes.split(),
                                  expires_at=refresh.expires_at, resource=grant.resource, subject=grant.user_id,
                                  token_hash=refresh.token_hash, grant_id=grant.grant_id)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: KamiyoRefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        now = self.now()
        failure: TokenError | None = None
        async with self.store.transaction() as db:
            found = await self.store.oauth_refresh(refresh_token.token_hash, db)
            refresh, grant = found if found is not None else (None, None)
            if refresh is None or grant is None:
                failure = TokenError("invalid_grant", "refresh token does not exist")
            elif grant.revoked_at is not None:
                failure = TokenError("invalid_grant", f"this sign-in was revoked ({grant.revoked_reason}); "
                                                      "sign in again")
            elif refresh.used_at is not None:
                await self.store.end_oauth_grant(db, grant.grant_id, "refresh token reused", now=now)
                await self.store.audit_in(db, AuditEntry("oauth", "oauth.refresh_reuse", grant.grant_id,
                                                       f"client={grant.client_id}"), now=now)
                failure = TokenError("invalid_grant", REUSED)
            elif refresh.expires_at <= now:
                failure = TokenError("invalid_grant", "refresh token has expired; sign in again")
            elif (ended := await self._ended(db, grant.subscription_id, now)) is not None:
                await self.store.end_oauth_grant(db, grant.grant_id, "subscription_ended", now=now)
                failure = TokenError("invalid_grant", f"no token can be issued: {ended}")
            elif await self.store.spend_oauth_refresh(db, refresh.token_hash, now=now):
                await self.store.touch_oauth_grant(db, grant.grant_id, now=now)
                tokens = await self._mint(db, grant, client, now)
                await self.store.audit_in(db, AuditEntry("oauth", "oauth.refresh", grant.grant_id,
                                                       f"client={grant.client_id}"), now=now)
                return tokens
            else:
                failure = TokenError("invalid_grant", "refresh token does not exist")
        assert failure is not None  # raised outside the transaction, as above
        raise failure

    async def _ended(self, db: Connection, subscription_id: str, now: int) -> str | None:
        entitlement = await self.store.entitlement(subscription_id, db)
        if entitlement is None:
            return "the subscription no longer exists"
        return entitlement_problem(entitlement, now)

    async def _mint(self, db: Connection, grant: StoredGrant, client: OAuthClientInformationFull,
                    now: int) -> OAuthToken:
        entitlement = await self.store.entitlement(grant.subscription_id, db)
        assert entitlement is not None
        # Nothing an app holds outlives an operator grant (its bearer token's expiry, as for rotation).
        until = entitlement.live_until if entitlement.kind == KIND_OPERATOR_GRANT else None
        expires_at = _capped(now + self.config.access_token_seconds, until)
        token, claims = self.codec.mint(sub=grant.user_id, tier=entitlement.tier, sid=grant.subscription_id, now=now,
                                        expires_at=expires_at, audience=grant.resource, grant_id=grant.grant_id)
        await self.store.insert_oauth_access(db, NewToken(claims.jti, grant.user_id, grant.subscription_id,
                                                          token_hash(token), now, expires_at), grant.grant_id, now=now)
        refresh: str | None = None
        if "refresh_token" in client.grant_types:
            refresh = new_secret(REFRESH_PREFIX)
            await self.store.insert_oauth_refresh(db, StoredRefresh(
                hashed(refresh), grant.grant_id, now, _capped(now + self.config.refresh_token_days * 86_400, until),
                None))
        return OAuthToken(access_token=token, token_type="Bearer", expires_in=expires_at - now,
                          scope=grant.scopes, refresh_token=refresh)

    # ---- access tokens and revocation ------------------------------------------------------

    async def load_access_token(self, token: str) -> KamiyoAccessToken | None:
        try:
            self.codec.verify(token, now=self.now())
        except InvalidTokenError:
            return None
        row = await self.store.oauth_access(token_hash(token))
        if row is None:
            return None
        return KamiyoAccessToken(token=token, client_id=row.client_id, scopes=row.scopes.split(),
                                 expires_at=row.expires_at, resource=row.resource, grant_id=row.grant_id)

    async def revoke_token(self, token: KamiyoAccessToken | KamiyoRefreshToken) -> None:
        """RFC 7009: the client signs out; the whole grant ends (its refresh and access tokens)."""
        await self.store.revoke_oauth_grant(token.grant_id, "revoked by the client", now=self.now(),
                                            audit=AuditEntry("client", "oauth.revoke", token.grant_id,
                                                             f"client={token.client_id}"))


    async def exchange_identity_assertion(self, client: OAuthClientInformationFull,
                                          params: IdentityAssertionParams) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "the JWT bearer grant is not supported by this server")


def entitlement_problem(entitlement: Entitlement, now: int) -> str | None:
    """Why `entitlement` may not be signed in to or refreshed now, or None when it may.

    A subscription as the authority judges it; an operator grant, besides, only while one of its
    bearer tokens is live: its expiry (`token issue --days`) or its revocation ends the grant, and
    an app's sign-in must not outlive it.
    """
    if not is_tier(entitlement.tier):
        return f"the subscription's tier {entitlement.tier!r} is unknown"
    ended = entitlement_ended(entitlement.status, entitlement.current_period_end, entitlement.cancel_at_period_end,
                              now)
    if ended is None and entitlement.kind == KIND_OPERATOR_GRANT and (
            entitlement.live_until is None or entitlement.live_until <= now):
        return "the grant has ended (its token expired or was revoked)"
    return ended


def _capped(expires_at: int, until: int | None) -> int:
    return expires_at if until is None else min(expires_at, until)


def same_resource(requested: str, ours: str) -> bool:
    """RFC 8707 resource comparison: exact, ignoring a trailing slash and the scheme/host case."""
    def canonical(url: str) -> str:
        scheme, _, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")
    return canonical(requested) == canonical(ours)
