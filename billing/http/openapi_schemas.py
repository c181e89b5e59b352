"""The component schemas of the billing API's OpenAPI document (plain data; `openapi.py` assembles it)."""

from __future__ import annotations

from typing import Any

from billing.checkout_request import MAX_URL_LENGTH
from billing.claims import SESSION_ID_PATTERN
from billing.tiers import TIER_NAMES


def url(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH, "description": description}


def nullable(kind: str, description: str) -> dict[str, Any]:
    return {"type": [kind, "null"], "description": description}


SCHEMAS: dict[str, Any] = {
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
            "stripe_request_id": nullable("string", "Stripe's request id (502 only)."),
            "stripe_code": nullable("string", "Stripe's error code (502 only)."),
            "stripe_status": nullable("integer", "Stripe's HTTP status, null if unreachable (502 only)."),
        },
        "additionalProperties": True,
    },
    "CheckoutSessionRequest": {
        "type": "object",
        "required": ["tier", "user_email", "success_url", "cancel_url"],
        "properties": {
            "tier": {"type": "string", "enum": list(TIER_NAMES)},
            "user_email": {"type": "string", "format": "email", "maxLength": 254},
            "success_url": url("Where Stripe sends the buyer after paying; must be on an allowed origin. "
                                "{CHECKOUT_SESSION_ID} is added as ?session_id= when absent."),
            "cancel_url": url("Where Stripe sends the buyer on cancel; must be on an allowed origin."),
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
            "customer_email": nullable("string", "The buyer's email, once known."),
            "tier": {"type": ["string", "null"], "enum": [*TIER_NAMES, None]},
            "amount_total": nullable("integer", "In the currency's smallest unit."),
            "currency": nullable("string", "ISO 4217, lower case."),
            "subscription_id": nullable("string", "Stripe subscription id once paid."),
            "customer_id": nullable("string", "Stripe customer id once known."),
            "payment_status": {"type": ["string", "null"], "enum": ["paid", "unpaid", "no_payment_required", None]},
        },
        "additionalProperties": False,
    },
    "PortalSessionRequest": {
        "type": "object",
        "properties": {
            "return_url": url("Where the portal's back link goes; must be on an allowed origin. "
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
    "ClaimRequest": {
        "type": "object",
        "description": "Exactly one of the two: the Checkout Session id (the success page) or the emailed code.",
        "properties": {
            "session_id": {"type": "string", "maxLength": 512,
                           "description": "The paid Checkout Session's id (cs_test_... or cs_live_...)."},
            "claim_code": {"type": "string", "maxLength": 512, "description": "The code of the emailed claim link."},
        },
        "oneOf": [{"required": ["session_id"]}, {"required": ["claim_code"]}],
    },
    "TokenIssued": {
        "type": "object",
        "description": "A token, shown this once, with its paste-ready Claude Desktop config (no-store).",
        "required": ["token", "token_id", "tier", "expires_at", "claude_desktop_config"],
        "properties": {
            "token": {"type": "string", "description": "The bearer token; never stored or shown again."},
            "token_id": {"type": "string"},
            "tier": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time",
                           "description": "ISO 8601, UTC; a rotation keeps the replaced token's expiry."},
            "replaced_token_id": {"type": "string", "description": "Rotation only: the token it replaces."},
            "claude_desktop_config": {
                "type": "object", "required": ["mcpServers"],
                "description": "claude_desktop_config.json: reaches this server's /mcp through mcp-remote.",
                "properties": {"mcpServers": {"type": "object", "minProperties": 1}},
            },
        },
        "additionalProperties": False,
    },
    "TokenValidation": {
        "type": "object",
        "required": ["valid", "active", "user_id", "tier", "token_id", "subscription_status", "expires_at",
                     "revoked", "revoked_reason"],
        "properties": {
            "valid": {"type": "boolean", "const": True},
            "active": {"type": "boolean", "description": "Whether the token's calls are served now."},
            "user_id": {"type": "string"},
            "tier": {"type": "string"},
            "token_id": {"type": "string"},
            "subscription_status": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
            "revoked": {"type": "boolean"},
            "revoked_reason": nullable("string", "Why the token was revoked, when it was."),
        },
        "additionalProperties": False,
    },
    "StripeEvent": {
        "type": "object",
        "description": "A Stripe event exactly as Stripe sends it (verified on the raw body).",
        "required": ["id", "type", "created", "data"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "created": {"type": "integer"},
            "data": {"type": "object", "required": ["object"], "properties": {"object": {"type": "object"}}},
        },
    },
    "WebhookOutcome": {
        "type": "object",
        "required": ["status", "message", "event_id", "event_type", "processing_time_ms"],
        "properties": {
            "status": {"type": "string", "enum": ["processed", "ignored", "duplicate"]},
            "message": {"type": "string"},
            "event_id": {"type": "string"},
            "event_type": {"type": "string"},
            "processing_time_ms": {"type": "number", "exclusiveMinimum": 0},
        },
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "required": ["status", "database", "version"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "database": {"type": "string", "enum": ["ok", "unavailable"]},
            "version": {"type": "string"},
            "reconciliation": {
                "type": "object",
                "description": "The last reconciliation with Stripe (informative: it does not change `status`).",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "interval_seconds": {"type": "number"},
                    "running": {"type": "boolean"},
                    "last_run": {"type": ["object", "null"]},
                    "error": {"type": "string"},
                },
            },
            "intel": {
                "type": "object",
                "description": "The incident data: as of when, and its scheduled refresh (informative).",
                "properties": {
                    "data_as_of": {"type": ["string", "null"]},
                    "refresh": {"type": "string"},
                    "interval_seconds": {"type": "number"},
                    "sources": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        # Other components may add a section of their own: always an object, never a change of `status`.
        "additionalProperties": {"type": "object"},
    },
}
