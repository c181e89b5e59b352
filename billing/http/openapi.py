"""The billing API's contract: an OpenAPI 3.1 document (plain data) served at `GET /openapi.json`.

Every JSON route of the sidecar is here: checkout, the success page's lookup, the portal, billing
health, Stripe's webhooks, token claim, rotation and validation, and the operator's health and
metrics. CI fuzzes a running server against it (tests/contract/run_schemathesis.py), and a test
compares it with the app's routes: a route or a shape that changes without this document fails.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.checkout_request import MAX_IDEMPOTENCY_KEY_LENGTH
from billing.claims import SESSION_ID_PATTERN
from billing.http.openapi_schemas import SCHEMAS

PATH = "/openapi.json"
VERSION = "1.1.0"

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_COMMON = {
    400: "The request is malformed or refused; `error.code` names the rule.",
    401: "No bearer token, or a token that does not authenticate (forged, expired, rotated away).",
    405: "Method not allowed (the `Allow` header lists the allowed ones).",
    413: "The request body is too large.",
    415: "The request body is not application/json.",
    429: "Too many requests from this client (an IPv4 address or an IPv6 /64) this minute.",
    500: "Unexpected server error (logged).",
    502: "Stripe refused the call or could not be reached; carries Stripe's message and request id.",
    503: "Billing is not configured on this server or is unavailable (starting, or its database is down).",
}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _errors(*statuses: int, **texts: str) -> dict[str, Any]:
    """Error responses in the one Error shape; `texts` (`e404="..."`) word a status for this operation."""
    out: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {"description": texts.get(f"e{status}", _COMMON.get(status, "")),
                                    "content": {"application/json": {"schema": _ref("Error")}}}
        if status == 429:
            response["headers"] = _RETRY_AFTER
        out[str(status)] = response
    return out


def _ok(description: str, schema: str, status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


def _json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Passed to Stripe: a retry with the same key and body returns the same session.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH, "pattern": "^[!-~]+$"},
}
_STRIPE_SIGNATURE = {
    "name": "Stripe-Signature", "in": "header", "required": True,
    "description": "Stripe's signature of the raw body (t=...,v1=...), checked with STRIPE_WEBHOOK_SECRET.",
    "schema": {"type": "string", "minLength": 1},
}
_BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

_PATHS: dict[str, Any] = {
    "/api/billing/create-checkout-session": {"post": {
        "operationId": "createCheckoutSession",
        "summary": "Start a Stripe Checkout for a subscription tier.",
        "parameters": [_IDEMPOTENCY_KEY],
        "requestBody": _json_body("CheckoutSessionRequest"),
        "responses": {**_ok("The Checkout Session to redirect the buyer to.", "CheckoutSessionCreated"),
                      **_errors(400, 405, 409, 413, 415, 429, 500, 502, 503,
                                e409="The Idempotency-Key was used for a different request (or is in flight).")},
    }},
    "/api/billing/checkout-session/{session_id}": {"get": {
        "operationId": "getCheckoutSession",
        "summary": "The state of a Checkout Session (for the success page); a few lookups a minute per client.",
        "parameters": [{"name": "session_id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": SESSION_ID_PATTERN}}],
        "responses": {**_ok("The session.", "CheckoutSessionDetails"),
                      **_errors(400, 404, 405, 429, 500, 502, 503, e404="No such Checkout Session.",
                                e400="Not a Checkout Session id, or one of the other Stripe mode; Stripe is "
                                     "not asked.")},
    }},
    "/api/billing/create-portal-session": {"post": {
        "operationId": "createPortalSession",
        "summary": "Open the Stripe customer portal for the bearer token's Stripe customer.",
        "security": _BEARER,
        "requestBody": _json_body("PortalSessionRequest", required=False),
        "responses": {**_ok("The portal session to redirect to.", "PortalSessionCreated"),
                      **_errors(400, 401, 405, 409, 413, 415, 500, 502, 503,
                                e409="The token's account has no Stripe customer (an operator grant).")},
    }},
    "/api/billing/overage-cap": {"post": {
        "operationId": "setOverageCap",
        "summary": "Set the bearer token's subscription's spend cap for metered overage (at most the plan's "
                   "default); in force once Stripe's webhook arrives.",
        "security": _BEARER,
        "requestBody": _json_body("OverageCapRequest"),
        "responses": {**_ok("The cap written to the Stripe subscription.", "OverageCapSet"),
                      **_errors(400, 401, 405, 409, 413, 415, 500, 502, 503)},
    }},
    "/api/billing/checkout-health": {"get": {
        "operationId": "getCheckoutHealth",
        "summary": "Whether checkout can work: Stripe mode, priced tiers, webhook secret, database.",
        "responses": {**_ok("Billing is configured.", "CheckoutHealth"), **_errors(405, 500, 503)},
    }},
    "/api/v1/webhooks/stripe": {"post": {
        "operationId": "receiveStripeEvent",
        "summary": "A Stripe event: verified on the raw body, applied exactly once, in any order.",
        "parameters": [_STRIPE_SIGNATURE],
        "requestBody": _json_body("StripeEvent"),
        "responses": {**_ok("Applied, ignored (not a type we handle) or already applied.", "WebhookOutcome"),
                      **_errors(400, 405, 413, 429, 500, 503,
                                e400="The signature is missing, wrong or stale, or the signed body is not an event.",
                                e429="Too many unverified requests from this client (signed ones are never "
                                     "throttled).",
                                e500="Applying the event failed; it is recorded and Stripe retries it.",
                                e503="STRIPE_WEBHOOK_SECRET is unset.")},
    }},
    "/api/mcp/token/claim": {"post": {
        "operationId": "claimToken",
        "summary": "Redeem a claim (the checkout session or the emailed code): the token, once.",
        "requestBody": _json_body("ClaimRequest"),
        "responses": {**_ok("The new token (Cache-Control: no-store).", "TokenIssued"),
                      **_errors(400, 403, 404, 405, 410, 413, 415, 429, 500, 503,
                                e403="The subscription grants no access (ended, or its payment is pending).",
                                e404="No such claim (the same answer for any unknown secret).",
                                e410="The claim was already redeemed, or it expired.")},
    }},
    "/api/mcp/token/rotate": {"post": {
        "operationId": "rotateToken",
        "summary": "Replace the bearer token by a new one with the same expiry; the old one stops working.",
        "security": _BEARER,
        "responses": {**_ok("The replacement (Cache-Control: no-store).", "TokenIssued"),
                      **_errors(401, 403, 405, 429, 500, 503,
                                e403="The subscription behind the token has ended; no new token is issued.")},
    }},
    "/api/mcp/validate": {"post": {
        "operationId": "validateToken",
        "summary": "Whether the bearer token authenticates, and its account's state.",
        "security": _BEARER,
        "responses": {**_ok("The token authenticates (it may still be inactive: see `active`).",
                            "TokenValidation"),
                      **_errors(401, 405, 500, 503,
                                e401="The token does not authenticate; the body also has \"valid\": false.")},
    }},
    "/healthz": {"get": {
        "operationId": "getHealth",
        "summary": "Whether this instance reaches its database (for load balancers).",
        "responses": {**_ok("Healthy.", "Health"),
                      "503": {"description": "The database is unavailable.",
                              "content": {"application/json": {"schema": _ref("Health")}}},
                      **_errors(405)},
    }},
    "/metrics": {"get": {
        "operationId": "getMetrics",
        "summary": "Prometheus metrics, for operators: with KAMIYO_METRICS_TOKEN as a bearer token, else local "
                   "scrapers only.",
        "security": [{"metricsToken": []}, {}],
        "responses": {"200": {"description": "The Prometheus text format.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **_errors(401, 403, 405, 500,
                                e401="KAMIYO_METRICS_TOKEN is set and the request does not carry it.",
                                e403="No metrics token is set and the request is not a local scraper's.")},
    }},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the billing API (a fresh copy each call)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "KAMIYO MCP billing API",
            "version": VERSION,
            "description": "Stripe Checkout and the success page, the Stripe customer portal, Stripe's webhooks, "
                           "access tokens (claim, rotate, validate) and the operator's health and metrics. Every "
                           "error has the `Error` shape; every time is ISO 8601 UTC. The OAuth 2.1 authorization "
                           "server (/authorize, /token, /register, /revoke) is described by its RFC 8414 metadata at "
                           "/.well-known/oauth-authorization-server.",
        },
        "paths": copy.deepcopy(_PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The KAMIYO MCP access token."},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "KAMIYO_METRICS_TOKEN."},
            },
        },
    }


def openapi_routes() -> list[Route]:
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return [Route(PATH, openapi, methods=["GET"])]
