"""The billing API's contract: an OpenAPI 3.1 document (plain data) served at `GET /openapi.json`.

CI fuzzes a running server against it (tests/contract/run_schemathesis.py); a route or a shape
that changes without this document fails there.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.checkout_request import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_URL_LENGTH
from billing.claims import SESSION_ID_PATTERN
from billing.tiers import TIER_NAMES

PATH = "/openapi.json"
VERSION = "1.0.0"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_ERROR_TEXT = {
    400: "The request is malformed or refused; `error.code` names the rule.",
    401: "No bearer token, or a token that does not authenticate or was revoked.",
    404: "No such Checkout Session.",
    405: "Method not allowed.",
    409: "Checkout: the Idempotency-Key was used for a different request (or is in flight). "
         "Portal: the token has no Stripe customer (an operator grant).",
    413: "The request body is over 64 KiB.",
    415: "The request body is not application/json.",
    429: "Too many checkout attempts from this address.",
    500: "Unexpected server error (logged).",
    502: "Stripe refused the call or could not be reached; carries Stripe's message and request id.",
    503: "Billing is not configured on this server (STRIPE_SECRET_KEY unset), or is unavailable.",
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_TEXT[status],
                                "content": {"application/json": {"schema": _ERROR_REF}}}
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _url(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH, "description": description}


def _nullable(kind: str, description: str) -> dict[str, Any]:
    return {"type": [kind, "null"], "description": description}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "The one error shape of every billing endpoint; extra top-level fields may follow.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable reason, e.g. invalid_tier."},
                    "message": {"type": "string", "description": "What went wrong and what to do instead."},
                    "status": {"type": "integer", "description": "The HTTP status, repeated."},
                },
                "additionalProperties": False,
            },
            "stripe_request_id": _nullable("string", "Stripe's request id (502 only)."),
            "stripe_code": _nullable("string", "Stripe's error code (502 only)."),
            "stripe_status": _nullable("integer", "Stripe's HTTP status, null if unreachable (502 only)."),
        },
        "additionalProperties": True,
    },
    "CheckoutSessionRequest": {
        "type": "object",
        "required": ["tier", "user_email", "success_url", "cancel_url"],
        "properties": {
            "tier": {"type": "string", "enum": list(TIER_NAMES)},
            "user_email": {"type": "string", "format": "email", "maxLength": 254},
            "success_url": _url("Where Stripe sends the buyer after paying; must be on an allowed origin. "
                                "{CHECKOUT_SESSION_ID} is added as ?session_id= when absent."),
            "cancel_url": _url("Where Stripe sends the buyer on cancel; must be on an allowed origin."),
            "overage": {"type": "boolean", "default": False,
                        "description": "Keep working past the daily quota, each extra call metered (tiers with "
                                       "overage only; the subscription then carries the metered overage price)."},
        },
    },
    "CheckoutSessionCreated": {
        "type": "object",
        "required": ["checkout_url", "session_id", "expires_at"],
        "properties": {
            "checkout_url": {"type": "string", "format": "uri"},
            "session_id": {"type": "string", "pattern": SESSION_ID_PATTERN},
            "expires_at": {"type": "string", "format": "date-time",
                           "description": "When the session expires (ISO 8601, UTC)."},
        },
        "additionalProperties": False,
    },
    "CheckoutSessionDetails": {
        "type": "object",
        "required": ["session_id", "status", "customer_email", "tier", "amount_total", "currency",
                     "subscription_id", "customer_id", "payment_status"],
        "properties": {
            "session_id": {"type": "string"},
            "status": {"type": ["string", "null"], "enum": ["open", "complete", "expired", None]},
            "customer_email": _nullable("string", "The buyer's email, once known."),
            "tier": {"type": ["string", "null"], "enum": [*TIER_NAMES, None]},
            "amount_total": _nullable("integer", "In the currency's smallest unit."),
            "currency": _nullable("string", "ISO 4217, lower case."),
            "subscription_id": _nullable("string", "Stripe subscription id once paid."),
            "customer_id": _nullable("string", "Stripe customer id once known."),
            "payment_status": {"type": ["string", "null"], "enum": ["paid", "unpaid", "no_payment_required", None]},
        },
        "additionalProperties": False,
    },
    "PortalSessionRequest": {
        "type": "object",
        "properties": {
            "return_url": _url("Where the portal's back link goes; must be on an allowed origin. "
                               "Default: the server's public URL."),
        },
    },
    "PortalSessionCreated": {
        "type": "object",
        "required": ["portal_url"],
        "properties": {"portal_url": {"type": "string", "format": "uri"}},
        "additionalProperties": False,
    },
    "CheckoutHealth": {
        "type": "object",
        "required": ["status", "stripe_mode", "configured_tiers", "webhook_secret_configured", "database"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"],
                       "description": "degraded: no tier has a Stripe price configured."},
            "stripe_mode": {"type": "string", "enum": ["test", "live"]},
            "configured_tiers": {"type": "array", "items": {"type": "string", "enum": list(TIER_NAMES)}},
            "webhook_secret_configured": {"type": "boolean"},
            "database": {"type": "string", "enum": ["ok"]},
        },
        "additionalProperties": False,
    },
    "OverageCapRequest": {
        "type": "object",
        "required": ["cap_usd"],
        "properties": {"cap_usd": {"type": "integer", "minimum": 0,
                                   "description": "Whole dollars per billing period, at most the plan's default cap."}},
    },
    "OverageCapSet": {
        "type": "object",
        "required": ["cap_usd", "default_cap_usd", "in_force"],
        "properties": {
            "cap_usd": {"type": "integer"},
            "default_cap_usd": {"type": "integer"},
            "in_force": {"type": "string"},
        },
        "additionalProperties": False,
    },
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Passed to Stripe: a retry with the same key and body returns the same session.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH, "pattern": "^[!-~]+$"},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the billing API (a fresh copy each call)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "KAMIYO MCP billing API",
            "version": VERSION,
            "description": "Stripe Checkout, Checkout Session details, the Stripe customer portal and billing "
                           "health. Every error has the `Error` shape.",
        },
        "paths": {
            "/api/billing/create-checkout-session": {"post": {
                "operationId": "createCheckoutSession",
                "summary": "Start a Stripe Checkout for a subscription tier.",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": _json_body("CheckoutSessionRequest"),
                "responses": {"200": _ok("The Checkout Session to redirect the buyer to.", "CheckoutSessionCreated"),
                              **{str(s): _error(s) for s in (400, 405, 409, 413, 415, 429, 500, 502, 503)}},
            }},
            "/api/billing/checkout-session/{session_id}": {"get": {
                "operationId": "getCheckoutSession",
                "summary": "The state of a Checkout Session (for the success page).",
                "parameters": [{"name": "session_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": SESSION_ID_PATTERN}}],
                "responses": {"200": _ok("The session.", "CheckoutSessionDetails"),
                              **{str(s): _error(s) for s in (400, 404, 405, 500, 502, 503)}},
            }},
            "/api/billing/create-portal-session": {"post": {
                "operationId": "createPortalSession",
                "summary": "Open the Stripe customer portal for the bearer token's Stripe customer.",
                "security": [{"bearerAuth": []}],
                "requestBody": _json_body("PortalSessionRequest", required=False),
                "responses": {"200": _ok("The portal session to redirect to.", "PortalSessionCreated"),
                              **{str(s): _error(s) for s in (400, 401, 405, 409, 413, 415, 500, 502, 503)}},
            }},
            "/api/billing/overage-cap": {"post": {
                "operationId": "setOverageCap",
                "summary": "Set the bearer token's subscription's spend cap for metered overage (at most the "
                           "plan's default); in force once Stripe's webhook arrives.",
                "security": [{"bearerAuth": []}],
                "requestBody": _json_body("OverageCapRequest"),
                "responses": {"200": _ok("The cap written to the Stripe subscription.", "OverageCapSet"),
                              **{str(s): _error(s) for s in (400, 401, 405, 409, 413, 415, 500, 502, 503)}},
            }},
            "/api/billing/checkout-health": {"get": {
                "operationId": "getCheckoutHealth",
                "summary": "Whether checkout can work: Stripe mode, priced tiers, webhook secret, database.",
                "responses": {"200": _ok("Billing is configured.", "CheckoutHealth"),
                              **{str(s): _error(s) for s in (405, 500, 503)}},
            }},
        },
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "The KAMIYO MCP access token."}},
        },
    }


def openapi_routes() -> list[Route]:
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return [Route(PATH, openapi, methods=["GET"])]
