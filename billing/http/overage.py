"""The customer's own spend cap for metered overage.

    POST /api/billing/overage-cap   {"cap_usd": 50} + Authorization: Bearer <MCP token>
        → 200 {"cap_usd": 50, "default_cap_usd": 200, "in_force": "..."}

The cap lives on the Stripe subscription (`metadata.overage_cap_usd`), like the opt-in (its metered
item): this writes it there, and Stripe's `customer.subscription.updated` webhook records it in the
store, as every Stripe change reaches it. A customer may set any whole-dollar cap up to the
operator's default for the tier (the tier table's `overage_cap_usd`), never above it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.authority import Authority
from billing.config import BillingConfig
from billing.errors import InvalidRequestError, InvalidTokenError
from billing.http.bearer_header import parse_bearer
from billing.http.body import read_json_object
from billing.http.endpoint import Refusal, json_route
from billing.overage import CAP_METADATA_KEY
from billing.stripe_gateway import StripeGateway

CAP_PATH = "/api/billing/overage-cap"
IN_FORCE = "in force once Stripe's customer.subscription.updated webhook arrives (seconds)"


def overage_routes(authority: Callable[[], Authority], config: BillingConfig,
                   gateway: Callable[[], StripeGateway | None]) -> list[Route]:
    """The cap route; `authority` and `gateway` give what the lifespan opened."""

    async def set_cap(request: Request) -> Response:
        if not config.overage_enabled:
            raise Refusal(503, "overage_not_configured", "metered overage is not sold on this server")
        opened = gateway()
        if opened is None:
            raise Refusal(503, "billing_unavailable", "billing is starting or stopping; retry shortly",
                          headers={"Retry-After": "5"})
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            raise Refusal(401, "invalid_token", "send your KAMIYO token as 'Authorization: Bearer <token>'",
                          headers={"WWW-Authenticate": "Bearer"})
        try:
            state = (await authority().authenticate(token)).state
        except InvalidTokenError as exc:
            raise Refusal(401, "invalid_token", f"the token is not valid: {exc.reason}",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        if state.revoked_at is not None:
            raise Refusal(401, "invalid_token", "the token has been revoked",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        tier = config.tiers.get(state.tier)
        if state.kind != "stripe" or not state.stripe_subscription_id or tier is None or not tier.overage:
            raise Refusal(409, "overage_not_available",
                          f"this token's plan ({state.tier}{', an operator grant' if state.kind != 'stripe' else ''})"
                          " has no metered overage, so there is no cap to set")
        cap = _cap(await read_json_object(request), tier.overage_cap_usd)
        await opened.set_subscription_metadata(state.stripe_subscription_id, {CAP_METADATA_KEY: str(cap)})
        return JSONResponse({"cap_usd": cap, "default_cap_usd": tier.overage_cap_usd, "in_force": IN_FORCE})

    return [json_route(CAP_PATH, set_cap, {"POST"})]


def _cap(body: dict[str, object], default: int) -> int:
    value = body.get("cap_usd")
    if value is None:
        raise InvalidRequestError("missing_field", "cap_usd is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError("invalid_cap", "cap_usd must be a whole number of dollars")
    if not 0 <= value <= default:
        raise InvalidRequestError("invalid_cap", f"cap_usd must be from 0 to {default} (the default cap for this "
                                                 "plan; a customer can lower it, not raise it)")
    return value
