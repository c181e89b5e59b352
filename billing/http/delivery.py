"""Token delivery over HTTP: redeem a claim, rotate a token.

    POST /api/mcp/token/claim   {"session_id": "cs_..."} | {"claim_code": "..."}
        → 200 {token, token_id, tier, expires_at, claude_desktop_config}
    POST /api/mcp/token/rotate  Authorization: Bearer <token>
        → 200 {token, token_id, replaced_token_id, tier, expires_at, claude_desktop_config}

`expires_at` is ISO 8601 (UTC), as everywhere; a rotated token keeps the expiry of the one it replaces.

Answers holding a token are `Cache-Control: no-store`; the token is never logged. Both endpoints
are rate-limited per client IP; an unknown claim secret always gets the same 404, so a guess
learns nothing about which subscriptions exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.access import subscription_grants_access
from billing.account import iso
from billing.authority import Authority, IssuedToken
from billing.delivery import ClaimRefused, Delivery
from billing.errors import InvalidRequestError, InvalidTokenError, NotFoundError
from billing.http.bearer_header import parse_bearer
from billing.http.body import read_json_object
from billing.http.endpoint import Refusal, json_route
from billing.http.ip_rate_limit import PerIPLimiter, limit_or_refuse

logger = logging.getLogger(__name__)

CLAIM_PATH = "/api/mcp/token/claim"
ROTATE_PATH = "/api/mcp/token/rotate"
CLAIM_RATE_PER_MINUTE = 20
ROTATE_RATE_PER_MINUTE = 10
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def delivery_routes(delivery: Callable[[], Delivery], authority: Callable[[], Authority], *,
                    claim_rate_per_minute: int = CLAIM_RATE_PER_MINUTE,
                    rotate_rate_per_minute: int = ROTATE_RATE_PER_MINUTE,
                    clock: Callable[[], float] = time.time) -> list[Route]:
    """The claim and rotate routes; `delivery` and `authority` give what the lifespan opened."""
    claim_limiter = PerIPLimiter(claim_rate_per_minute, clock=clock)
    rotate_limiter = PerIPLimiter(rotate_rate_per_minute, clock=clock)

    async def claim(request: Request) -> Response:
        limit_or_refuse(claim_limiter, request, "claim attempts")
        body = await read_json_object(request)
        session_id, claim_code = body.get("session_id"), body.get("claim_code")
        if (session_id is None) == (claim_code is None):
            raise InvalidRequestError("invalid_claim_request", 'send exactly one of "session_id" or "claim_code"')
        if not isinstance(session_id or claim_code, str):
            raise InvalidRequestError("invalid_claim_request", "the session id or claim code must be a string")
        current = delivery()
        try:
            issued = await current.redeem(session_id=session_id, claim_code=claim_code)
        except ClaimRefused as exc:
            refusal = exc.refusal
            raise Refusal(refusal.status, refusal.code, refusal.message, headers=NO_STORE) from None
        logger.info("claim redeemed: token %s minted for subscription %s (%s)", issued.token_id,
                    issued.subscription_id, "checkout session" if session_id else "emailed code")
        return _token_answer(current, issued)

    async def rotate(request: Request) -> Response:
        limit_or_refuse(rotate_limiter, request, "rotation attempts")
        token = parse_bearer(request.headers.get("authorization"))
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if token is None:
            raise Refusal(401, "invalid_token", "send the token to replace as 'Authorization: Bearer <token>'",
                          headers={"WWW-Authenticate": "Bearer"})
        current = authority()
        try:
            identity = await current.authenticate(token)
        except InvalidTokenError as exc:
            raise Refusal(401, "invalid_token", f"the token is not valid: {exc.reason}", headers=challenge) from None
        state = identity.state
        if state.credential == "oauth":
            raise Refusal(400, "oauth_token_not_rotated", "an app's OAuth access token is renewed by that app "
                          "(refresh), never rotated into a long-lived token")
        if state.revoked_at is not None:
            raise Refusal(401, "invalid_token", f"the token was revoked ({state.revoked_reason}); it cannot be "
                          "rotated", headers=challenge)
        if not subscription_grants_access(state, current.now()):
            raise Refusal(403, "subscription_not_active",
                          f"the subscription behind this token is {state.status}; no new token can be issued. "
                          f"Plans are at {current.links.pricing_url}")
        try:
            issued = await current.rotate(state.token_id, actor="api")
        except NotFoundError:
            raise Refusal(401, "invalid_token", "the token was replaced or revoked meanwhile",
                          headers=challenge) from None
        logger.info("token %s rotated to %s over the API", state.token_id, issued.token_id)
        return _token_answer(delivery(), issued, replaced_token_id=state.token_id)

    return [
        json_route(CLAIM_PATH, claim, {"POST"}),
        json_route(ROTATE_PATH, rotate, {"POST"}),
    ]


def _token_answer(delivery: Delivery, issued: IssuedToken, **extra: object) -> JSONResponse:
    body = {
        "token": issued.token,
        "token_id": issued.token_id,
        "tier": issued.tier,
        "expires_at": iso(issued.expires_at),
        **extra,
        "claude_desktop_config": delivery.claude_config(issued.token),
    }
    return JSONResponse(body, headers=NO_STORE)
