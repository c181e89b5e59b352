"""The purchase path under `/api/billing/` (paths and shapes of the original backend) and `/openapi.json`.

    POST /api/billing/create-checkout-session       {tier, user_email, success_url, cancel_url}
    GET  /api/billing/checkout-session/{session_id}
    POST /api/billing/create-portal-session         {return_url?} + Authorization: Bearer <MCP token>
    GET  /api/billing/checkout-health

Handlers are thin: checks live in `billing.checkout_request`, Stripe behind `StripeGateway`.
Every error is the one JSON error shape; Stripe's own failures answer 502 with Stripe's message
and request id. Without STRIPE_SECRET_KEY every billing endpoint answers 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.account import iso
from billing.authority import Authority
from billing.checkout_request import (
    check_idempotency_key,
    check_session_id,
    checkout_session_params,
    client_reference,
    parse_checkout_request,
    parse_portal_return_url,
)
from billing.config import BillingConfig
from billing.errors import InvalidRequestError, InvalidTokenError, StoreError
from billing.http.bearer_header import parse_bearer
from billing.http.body import read_json_object
from billing.http.endpoint import Refusal, json_route
from billing.http.ip_rate_limit import PerIPLimiter, limit_or_refuse
from billing.http.openapi import openapi_routes
from billing.stripe_gateway import StripeGateway, StripeGatewayError, stripe_mode
from billing.tiers import TIER_NAMES, is_tier

logger = logging.getLogger(__name__)

PREFIX = "/api/billing"
NOT_CONFIGURED = "billing is not configured on this server (STRIPE_SECRET_KEY is unset); MCP access is unaffected"

AuthorityProvider = Callable[[], Authority]
GatewayProvider = Callable[[], StripeGateway | None]


class StripeGatewaySlot:
    """The app's one `StripeGateway`: opened in the lifespan, None while closed or unconfigured."""

    def __init__(self, config: BillingConfig) -> None:
        self._config = config
        self._gateway: StripeGateway | None = None

    def __call__(self) -> StripeGateway | None:
        return self._gateway

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[StripeGateway | None]:
        """Hold a gateway (and its connection pool) for the block; nothing when billing is off."""
        key = self._config.stripe_secret_key
        if not key:
            yield None
            return
        async with StripeGateway(key, self._config.stripe_api_base) as gateway:
            self._gateway = gateway
            try:
                yield gateway
            finally:
                self._gateway = None


def billing_routes(authority: AuthorityProvider, config: BillingConfig, gateway: GatewayProvider, *,
                   clock: Callable[[], float] = time.time) -> list[Route]:
    """The billing routes and `/openapi.json`; `authority` and `gateway` give what the lifespan opened."""
    limiter = PerIPLimiter(config.checkout_rate_per_minute, clock=clock)
    # Every lookup is a call on the merchant's Stripe rate limit: a client gets a few a minute.
    lookup_limiter = PerIPLimiter(config.checkout_lookup_rate_per_minute, clock=clock)

    def stripe() -> StripeGateway:
        if not config.billing_enabled:
            raise Refusal(503, "billing_not_configured", NOT_CONFIGURED)
        opened = gateway()
        if opened is None:
            raise Refusal(503, "billing_unavailable", "billing is starting or stopping; retry shortly",
                          headers={"Retry-After": "5"})
        return opened

    async def create_checkout_session(request: Request) -> Response:
        stripe_gateway = stripe()
        limit_or_refuse(limiter, request, "checkout attempts")
        idempotency_key = check_idempotency_key(request.headers.get("idempotency-key"))
        checkout = parse_checkout_request(await read_json_object(request), config)
        known = await authority().store.customer_for_email(checkout.email)
        if known is not None and not await _is_signed_in_as(authority(), request, known.user_id):
            # An email alone proves nothing: reusing its Stripe customer would let anyone open a
            # Checkout on that customer (its saved cards and address). Only the signed-in owner reuses it.
            known = None
        params = checkout_session_params(
            checkout,
            stripe_customer_id=known.stripe_customer_id if known else None,
            client_reference_id=client_reference(checkout.email, known.user_id if known else None),
            automatic_tax=config.checkout_automatic_tax,
        )
        try:
            session = await stripe_gateway.create_checkout_session(params, idempotency_key)
        except StripeGatewayError as exc:
            if exc.error_type == "idempotency_error":  # the client's key, reused for another request
                raise Refusal(409, "idempotency_conflict", f"Idempotency-Key conflict: {exc.message}",
                              extra={"stripe_request_id": exc.request_id}) from None
            raise
        # Not the session id: it is also the secret of the success page's token claim.
        logger.info("checkout session created for tier %s (known Stripe customer: %s)", checkout.tier,
                    bool(known and known.stripe_customer_id))
        return JSONResponse({"checkout_url": session["url"], "session_id": session["id"],
                             "expires_at": iso(session["expires_at"])})

    async def checkout_session(request: Request) -> Response:
        stripe_gateway = stripe()
        limit_or_refuse(lookup_limiter, request, "checkout lookups")
        session_id = check_session_id(request.path_params["session_id"])
        assert config.stripe_secret_key is not None  # stripe() refused otherwise
        mode = stripe_mode(config.stripe_secret_key)
        if not session_id.startswith(f"cs_{mode}_"):
            other = "live" if mode == "test" else "test"
            raise InvalidRequestError("invalid_session_id", f"{session_id} is a {other}-mode Checkout Session id, "
                                      f"but this server uses a {mode}-mode Stripe key: no such session exists here")
        try:
            session = await stripe_gateway.retrieve_checkout_session(session_id)
        except StripeGatewayError as exc:
            if exc.not_found:
                raise Refusal(404, "session_not_found", f"there is no checkout session {session_id}") from None
            raise
        return JSONResponse(session_details(session))

    async def create_portal_session(request: Request) -> Response:
        stripe_gateway = stripe()
        customer = await _token_customer(authority(), request.headers.get("authorization"))
        return_url = parse_portal_return_url(await read_json_object(request, allow_empty=True), config)
        portal = await stripe_gateway.create_portal_session(customer, return_url)
        return JSONResponse({"portal_url": portal["url"]})

    async def checkout_health(request: Request) -> Response:
        database = await _database_state(authority)
        health: dict[str, object] = {
            "configured_tiers": [tier for tier in TIER_NAMES if tier in config.prices],
            "webhook_secret_configured": bool(config.stripe_webhook_secret),
            "database": database,
        }
        if not config.billing_enabled or config.stripe_secret_key is None:
            raise Refusal(503, "billing_not_configured", NOT_CONFIGURED, extra={"status": "not_configured", **health})
        health = {"stripe_mode": stripe_mode(config.stripe_secret_key), **health}
        if database != "ok":
            raise Refusal(503, "database_unavailable", "the billing database is unavailable",
                          extra={"status": "unavailable", **health})
        ready = bool(health["configured_tiers"])
        return JSONResponse({"status": "ok" if ready else "degraded", **health})

    return [
        json_route(f"{PREFIX}/create-checkout-session", create_checkout_session, {"POST"}),
        json_route(PREFIX + "/checkout-session/{session_id:path}", checkout_session, {"GET", "HEAD"}),
        json_route(f"{PREFIX}/create-portal-session", create_portal_session, {"POST"}),
        json_route(f"{PREFIX}/checkout-health", checkout_health, {"GET", "HEAD"}),
        *openapi_routes(),
    ]


def session_details(session: Mapping[str, Any]) -> dict[str, object]:
    """What `GET checkout-session/{id}` shows of a Stripe Checkout Session."""
    details = session.get("customer_details") or {}
    metadata = session.get("metadata") or {}
    tier = metadata.get("tier")
    return {
        "session_id": session["id"],
        "status": session.get("status"),
        "customer_email": details.get("email") or session.get("customer_email"),
        "tier": tier if is_tier(tier) else None,
        "amount_total": session.get("amount_total"),
        "currency": session.get("currency"),
        "subscription_id": _object_id(session.get("subscription")),
        "customer_id": _object_id(session.get("customer")),
        "payment_status": session.get("payment_status"),
    }


async def _token_customer(authority: Authority, authorization: str | None) -> str:
    """The Stripe customer id of the bearer token's user."""
    token = parse_bearer(authorization)
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if token is None:
        raise Refusal(401, "invalid_token", "send your KAMIYO token as 'Authorization: Bearer <token>'",
                      headers={"WWW-Authenticate": "Bearer"})
    try:
        identity = await authority.authenticate(token)
    except InvalidTokenError as exc:
        raise Refusal(401, "invalid_token", f"the token is not valid: {exc.reason}", headers=challenge) from None
    state = identity.state
    if state.revoked_at is not None:
        raise Refusal(401, "invalid_token", "the token has been revoked", headers=challenge)
    if not state.stripe_customer_id:
        if state.kind == "grant":
            message = ("this token's access is an operator grant with no Stripe customer, so there is no "
                       "Stripe billing to manage; contact support to change it")
        else:
            message = "no Stripe customer is linked to this token's account yet; retry in a minute"
        raise Refusal(409, "no_stripe_customer", message)
    return state.stripe_customer_id


async def _is_signed_in_as(authority: Authority, request: Request, user_id: str) -> bool:
    """Whether the request carries a live token of `user_id`."""
    token = parse_bearer(request.headers.get("authorization"))
    if token is None:
        return False
    try:
        identity = await authority.authenticate(token)
    except InvalidTokenError:
        return False
    return identity.state.user_id == user_id and identity.state.revoked_at is None


async def _database_state(authority: AuthorityProvider) -> str:
    try:
        return "ok" if await authority().store.ping() else "unavailable"
    except (StoreError, RuntimeError):  # RuntimeError: the runtime is not open
        logger.exception("billing health: the store is unavailable")
        return "unavailable"



def _object_id(value: object) -> str | None:
    """The id of a Stripe reference: a plain id, or an expanded object's `id`."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None
