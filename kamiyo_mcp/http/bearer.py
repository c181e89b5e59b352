"""Bearer authentication in front of the MCP endpoint (MCP authorization spec, RFC 6750/9728).

One authentication and one store trip per request, and the token goes no further than this layer:
- the token is verified (signature and claims, memoized) and hashed once into a `Credential`, and
  the `Authorization` header is removed from the request handed on;
- a `tools/call` (to a known tool, with arguments its input model accepts) is decided here, in the
  store trip that also reads the token's state; the gate takes that decision (`PendingCall`), and a
  decision the request never reached (a transport refusal, a dropped client) is withdrawn and its
  count given back;
- any other request reads the token's state once.

A missing, malformed, forged, expired, unknown or rotated-away token is answered 401 with a
`WWW-Authenticate` challenge; the body names the reason and never echoes the token. A request
that would open a new MCP session for a token whose account allows no calls (revoked,
subscription ended, payment required) is refused 403 before any session exists (401 for an app's
OAuth access token, so that the app signs in again), and each token (an app's OAuth grant) holds at
most its tier's number of open sessions (see sessions.py); otherwise a token that authenticates
passes, and its tool calls are refused by the gate with a message the user can act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

from billing.access import UNAUTHENTICATED, UNAUTHENTICATED_REASONS, Denial, Grant
from billing.authority import Authority, Identity
from billing.errors import InvalidTokenError, StoreError
from billing.http.bearer_header import parse_bearer
from billing.tiers import TIERS
from billing.tokens import Credential
from kamiyo_mcp.caller import SCOPE_KEY, Caller, PendingCall
from kamiyo_mcp.catalog import ToolCatalog
from kamiyo_mcp.http.protected_resource import ProtectedResource
from kamiyo_mcp.http.rpc_body import RPCRequest, parse_request, read_body
from kamiyo_mcp.http.sessions import SessionLimits, requested_session

logger = logging.getLogger(__name__)

__all__ = ["BearerAuth", "parse_bearer"]

VERSION_HEADER = b"mcp-protocol-version"
PRINCIPALS_KEPT = 4096


class BearerAuth:
    def __init__(self, app: ASGIApp, authority: Callable[[], Authority], catalog: ToolCatalog, *, path: str,
                 resource: ProtectedResource, session_idle_timeout: float | None = None) -> None:
        self.app = app
        self._authority = authority
        self._catalog = catalog
        self.path = path.rstrip("/")
        self._resource = resource
        self._sessions = SessionLimits(app, idle_timeout=session_idle_timeout)
        self._principals: dict[str, AuthenticatedUser] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        token = parse_bearer(header)
        if token is None:
            description = "the Authorization header is not 'Bearer <token>'" if header else None
            await self._unauthorized(send, description or "a bearer token is required", with_error=bool(header))
            return
        authority = self._authority()
        try:
            credential = authority.verify(token)
        except InvalidTokenError as exc:
            await self._unauthorized(send, exc.reason, with_error=True)
            return
        del token
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"authorization"]}

        request: RPCRequest | None = None
        if scope["method"] == "POST":
            body, receive = await read_body(receive)
            request = parse_request(body) if body is not None else None
        opens_session = _opens_session(scope)
        call = request.tool_call() if request is not None and not opens_session else None
        pending: PendingCall | None = None
        identity: Identity | None = None
        try:
            if call is not None and self._catalog.accepts(call.name, call.arguments):
                decision = await authority.admit(credential, call.name,
                                                 with_account=self._catalog.shows_account(call.name))
                if isinstance(decision, Denial) and decision.code in UNAUTHENTICATED:
                    await self._unauthorized(send, UNAUTHENTICATED_REASONS[decision.code], with_error=True)
                    return
                pending = PendingCall(call.name, decision)
            else:
                identity = await authority.identify(credential)
                if opens_session and (refusal := authority.account_refusal(identity)) is not None:
                    if refusal.code in UNAUTHENTICATED:
                        await self._unauthorized(send, UNAUTHENTICATED_REASONS[refusal.code], with_error=True)
                    elif identity.state.credential == "oauth":
                        # An app's access token that no longer grants anything: 401, so the app signs in
                        # again (the sign-in then offers the plans), instead of a dead end.
                        await self._unauthorized(send, refusal.message, with_error=True)
                    else:
                        await _refuse(send, refusal, request)
                    return
        except InvalidTokenError as exc:
            await self._unauthorized(send, exc.reason, with_error=True)
            return
        except StoreError:
            logger.exception("store unavailable while authenticating")
            await _send_json(send, 503, {"error": "temporarily_unavailable",
                                         "error_description": "the account store is unavailable; retry shortly"},
                             [(b"retry-after", b"5")])
            return

        scope[SCOPE_KEY] = Caller(credential, pending)
        session_id = requested_session(scope)
        if opens_session or session_id is not None:
            scope["user"] = self._principal(credential)
        try:
            if identity is not None and opens_session:
                await self._open_session(identity, request, scope, receive, send)
            elif session_id is not None:
                async with self._sessions.using(session_id, scope["method"], send) as watching:
                    await self.app(scope, receive, watching)
            else:
                await self.app(scope, receive, send)
        finally:
            if pending is not None and (grant := pending.withdraw()) is not None:
                with anyio.CancelScope(shield=True):
                    await _refund(authority, grant)

    def _principal(self, credential: Credential) -> AuthenticatedUser:
        """Who owns a session: the SDK binds each session to the principal that opened it — the token, by
        its id (never the token itself), or an app's OAuth grant, whose refreshed access tokens go on with
        the same session. Remembered per token: the SDK's model is costly to build per call."""
        user = self._principals.get(credential.token_hash)
        if user is None:
            claims = credential.claims
            user = AuthenticatedUser(AccessToken(token=claims.principal, client_id=claims.principal, scopes=[],
                                                 subject=claims.sub))
            if len(self._principals) >= PRINCIPALS_KEPT:
                self._principals.pop(next(iter(self._principals)))
            self._principals[credential.token_hash] = user
        return user

    async def _open_session(self, identity: Identity, request: RPCRequest | None, scope: Scope, receive: Receive,
                            send: Send) -> None:
        """Forward a request that opens a session, within the token's cap of open sessions."""
        tier = TIERS.get(identity.state.tier)
        cap = tier.sessions_per_token if tier is not None else 1
        owner = identity.credential.claims.principal  # a token, or an app's grant across its refreshes
        async with self._sessions.opening(owner, cap, scope, send) as recording:
            if recording is None:
                await _rpc_error(send, 429, request, f"This token already has {cap} open MCP sessions, each with "
                                 "a call in progress. Close one (HTTP DELETE) or retry when a call finishes.",
                                 "too_many_sessions", [(b"retry-after", b"5")])
                return
            await self.app(scope, receive, recording)

    async def _unauthorized(self, send: Send, description: str, *, with_error: bool) -> None:
        challenge = self._resource.challenge(description if with_error else None)
        await _send_json(send, 401, {"error": "invalid_token", "error_description": description},
                         [(b"www-authenticate", challenge.encode())])


def _opens_session(scope: Scope) -> bool:
    """Whether this request would open a handshake-era MCP session (a POST with no session id)."""
    version = _header(scope, VERSION_HEADER)
    modern = version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS
    return scope["method"] == "POST" and not modern and requested_session(scope) is None


async def _refund(authority: Authority, grant: Grant) -> None:
    try:
        await authority.refund(grant)
    except StoreError:
        logger.exception("could not give back a call that never reached its tool")


async def _refuse(send: Send, denial: Denial, request: RPCRequest | None) -> None:
    """A refusal as a JSON-RPC error (the transport's own error shape) with the refusal's HTTP status."""
    await _rpc_error(send, denial.http_status, request, denial.message, str(denial.code), [])


async def _rpc_error(send: Send, status: int, request: RPCRequest | None, message: str, reason: str,
                     headers: list[tuple[bytes, bytes]]) -> None:
    error = {"code": -32001, "message": message, "data": {"reason": reason}}
    body: dict[str, object] = {"jsonrpc": "2.0", "id": request.id if request is not None else None, "error": error}
    await _send_json(send, status, body, headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_json(send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": payload})
