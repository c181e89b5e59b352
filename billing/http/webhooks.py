"""`POST /api/v1/webhooks/stripe`: verify, record and apply in one transaction, answer.

Errors use the one JSON error shape; a failed application answers 500 so Stripe retries. Only
requests that fail verification count against the per-IP limit: signed deliveries never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.config import BillingConfig
from billing.http.endpoint import json_route
from billing.http.errors import error_body, error_response
from billing.http.ip_rate_limit import PerIPLimiter
from billing.store import Store
from billing.webhooks.event import MalformedEventError, parse_event
from billing.webhooks.processor import WebhookProcessor
from billing.webhooks.registry import HandlerRegistry, default_registry
from billing.webhooks.signature import SignatureError, verify_signature

PATH = "/api/v1/webhooks/stripe"
MAX_BODY_BYTES = 1 << 20

DeliveryObserver = Callable[[str, str, float], None]  # (event type, outcome, seconds)


def webhook_routes(store: Callable[[], Store], config: BillingConfig, *, registry: HandlerRegistry | None = None,
                   on_delivery: DeliveryObserver | None = None, on_mail_queued: Callable[[], None] | None = None,
                   clock: Callable[[], float] = time.time) -> list[Route]:
    """The webhook route; `store` gives the open store when a request arrives (it opens in the lifespan).

    `on_mail_queued` is called after an event that queued a mail (a welcome mail) was applied
    (committed), to wake the outbox sender; only then: a sender woken by every event runs a write
    transaction per event for nothing.
    """
    registry = registry if registry is not None else default_registry()
    processors: list[WebhookProcessor] = []  # one per open store: it batches concurrent deliveries

    def processor() -> WebhookProcessor:
        current = store()
        if not processors or processors[0].store is not current:
            processors[:] = [WebhookProcessor(current, config, registry, clock=clock)]
        return processors[0]

    limiter = PerIPLimiter(config.webhook_unverified_rate_per_minute, clock=clock)
    observe = on_delivery or (lambda event_type, outcome, seconds: None)

    def reject(request: Request, started: float, status: int, code: str, message: str) -> Response:
        retry_after = limiter.hit_request(request)
        if retry_after is not None:
            status, code = 429, "rate_limited"
            message = f"too many unverified webhook requests from this address; retry in {retry_after} s"
        observe("unverified", code, time.perf_counter() - started)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return error_response(status, code, message, headers=headers)

    async def stripe_webhook(request: Request) -> Response:
        started = time.perf_counter()
        secret = config.stripe_webhook_secret
        if not secret:
            observe("unverified", "not_configured", 0.0)
            return error_response(503, "webhooks_not_configured",
                                  "Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET is unset)")
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return reject(request, started, 413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        signature = request.headers.get("stripe-signature")
        if not signature:
            return reject(request, started, 400, "missing_signature", "the Stripe-Signature header is missing")
        try:
            verify_signature(body, signature, secret, tolerance=config.webhook_tolerance_seconds)
        except SignatureError as exc:
            return reject(request, started, 400, "invalid_signature", f"the Stripe-Signature does not verify: {exc}")
        try:
            text = body.decode("utf-8")  # what Stripe sends, and what is stored (json.loads would take UTF-16 too)
            event = parse_event(text)
        except UnicodeDecodeError:
            observe("malformed", "invalid_payload", time.perf_counter() - started)
            return error_response(400, "invalid_payload", "the signed body is not UTF-8 JSON")
        except MalformedEventError as exc:
            observe("malformed", "invalid_payload", time.perf_counter() - started)
            return error_response(400, "invalid_payload", f"the signed body is not a Stripe event: {exc}")
        outcome = await processor().process(event, text)
        if outcome.mail_queued and on_mail_queued is not None:
            on_mail_queued()
        elapsed = time.perf_counter() - started
        observe(event.type, outcome.status, elapsed)
        about = {"event_id": event.id, "event_type": event.type, "processing_time_ms": round(elapsed * 1000, 3)}
        if outcome.status == "failed":
            return JSONResponse(error_body(500, "webhook_failed", outcome.message, **about), status_code=500)
        return JSONResponse({"status": outcome.status, "message": outcome.message, **about})

    return [json_route(PATH, stripe_webhook, {"POST"})]


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is (or announces itself) over `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)
