"""The webhook endpoint: verified, recorded, answered; every shared Stripe event through real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from billing.claims import REDACTED_SESSION_PREFIX, claim_hash, redact_session_ids
from billing.http.webhooks import PATH, webhook_routes
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.billing.webhooks.webhook_support import (
    CUSTOMER,
    EVENT_NAMES,
    SUBSCRIPTION,
    Webhooks,
    environment,
    load_event,
    raw_event,
    signed_headers,
)
from tests.support import webhook_secret
from tests.support_mcp import start_of_a_fresh_minute_window

ANSWER_KEYS = {"status", "message", "event_id", "event_type", "processing_time_ms"}


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["error"]["status"] == status and body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def stored_events(webhooks: Webhooks) -> list[tuple]:
    return webhooks.rows("SELECT event_id, type, status, attempts FROM stripe_events ORDER BY event_id")


@pytest.mark.parametrize("name", EVENT_NAMES)
async def test_every_shared_event_signed_now_is_verified_and_processed(webhooks: Webhooks, name: str) -> None:
    started = time.perf_counter()
    response = await webhooks.post_fixture(name)
    round_trip_ms = (time.perf_counter() - started) * 1000

    body = response.json()
    assert response.status_code == 200, body
    assert set(body) == ANSWER_KEYS
    assert body["status"] == "processed"
    assert body["event_type"] == name
    assert body["event_id"] == load_event(name)["id"]
    # The server's own measure of this request: positive, and inside the round trip the client saw.
    assert 0 < body["processing_time_ms"] <= round_trip_ms
    assert stored_events(webhooks) == [(body["event_id"], name, "processed", 1)]
    payload = webhooks.rows("SELECT payload FROM stripe_events")[0][0]
    assert payload == redact_session_ids(raw_event(name).decode())  # as received, but for session ids


async def test_a_stored_checkout_event_names_its_session_only_by_the_claims_digest(webhooks: Webhooks) -> None:
    session_id = load_event("checkout.session.completed")["data"]["object"]["id"]
    assert (await webhooks.post_fixture("checkout.session.completed")).status_code == 200

    (payload, message), = webhooks.rows("SELECT payload, message FROM stripe_events")
    assert session_id not in payload + message
    stored = json.loads(payload)["data"]["object"]["id"]
    assert stored == REDACTED_SESSION_PREFIX + claim_hash(session_id)
    claims = webhooks.rows("SELECT secret_hash FROM claims WHERE kind = 'checkout_session'")
    assert claims == [(claim_hash(session_id),)]


async def test_the_six_shared_events_in_stripe_order_leave_a_canceled_team_subscription(webhooks: Webhooks) -> None:
    for name in sorted(EVENT_NAMES, key=lambda n: load_event(n)["created"]):
        assert (await webhooks.post_fixture(name)).status_code == 200

    assert webhooks.rows("SELECT subscription_id, kind, stripe_subscription_id, tier, status, payment_state"
                         " FROM subscriptions") == [
        (SUBSCRIPTION, "stripe", SUBSCRIPTION, "team", "canceled", "past_due")]
    assert webhooks.rows("SELECT email, stripe_customer_id FROM customers") == [("example@example.com", CUSTOMER)]
    assert webhooks.rows("SELECT kind FROM claims ORDER BY kind") == [("checkout_session",), ("email_code",)]


async def test_a_duplicate_event_is_answered_already_processed_and_not_applied_again(webhooks: Webhooks) -> None:
    first = await webhooks.post_fixture("customer.subscription.created")
    audit_rows = webhooks.rows("SELECT COUNT(*) FROM audit_log")
    second = await webhooks.post_fixture("customer.subscription.created")

    assert first.json()["status"] == "processed"
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["message"] == "already processed"
    assert webhooks.rows("SELECT COUNT(*) FROM audit_log") == audit_rows
    assert stored_events(webhooks)[0][2:] == ("processed", 1)


async def test_an_event_type_we_do_not_handle_is_answered_200_and_recorded_as_ignored(webhooks: Webhooks) -> None:
    event = load_event("customer.subscription.created")
    event.update(id="evt_unhandled_1", type="charge.refunded")

    response = await webhooks.post(event)

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert stored_events(webhooks) == [("evt_unhandled_1", "charge.refunded", "ignored", 1)]
    assert webhooks.rows("SELECT COUNT(*) FROM subscriptions") == [(0,)]


async def test_a_missing_signature_is_refused_with_400_and_nothing_stored(webhooks: Webhooks) -> None:
    response = await webhooks.post(raw_event("customer.subscription.created"),
                                   headers={"Content-Type": "application/json"})

    body = assert_error_shape(response, 400, "missing_signature")
    assert "Stripe-Signature" in body["error"]["message"]
    assert stored_events(webhooks) == []


async def test_a_signature_made_with_another_secret_is_refused_with_400(webhooks: Webhooks) -> None:
    payload = raw_event("customer.subscription.created")

    response = await webhooks.post(payload, headers=signed_headers(payload, secret=webhook_secret("someone_else")))

    assert_error_shape(response, 400, "invalid_signature")
    assert stored_events(webhooks) == []


async def test_a_signature_older_than_300_seconds_is_refused_with_400(webhooks: Webhooks) -> None:
    payload = raw_event("customer.subscription.created")

    response = await webhooks.post(payload, headers=signed_headers(payload, timestamp=int(time.time()) - 301))

    body = assert_error_shape(response, 400, "invalid_signature")
    assert "tolerance" in body["error"]["message"]
    assert stored_events(webhooks) == []


async def test_a_body_altered_after_signing_is_refused(webhooks: Webhooks) -> None:
    payload = raw_event("customer.subscription.created")
    headers = signed_headers(payload)

    response = await webhooks.post(payload.replace(b'"active"', b'"trialing"', 1), headers=headers)

    assert_error_shape(response, 400, "invalid_signature")
    assert stored_events(webhooks) == []


async def test_a_signed_body_that_is_not_json_is_refused_with_400(webhooks: Webhooks) -> None:
    response = await webhooks.post(b"this is not json")

    body = assert_error_shape(response, 400, "invalid_payload")
    assert "JSON" in body["error"]["message"]
    assert stored_events(webhooks) == []


async def test_a_signed_json_that_is_not_an_event_is_refused_with_400(webhooks: Webhooks) -> None:
    response = await webhooks.post({"id": "evt_x", "type": "customer.updated"})

    assert_error_shape(response, 400, "invalid_payload")
    assert stored_events(webhooks) == []


async def test_a_body_over_one_mebibyte_is_refused_with_413(webhooks: Webhooks) -> None:
    event = load_event("customer.subscription.created")
    event["data"]["object"]["metadata"] = {"padding": "x" * (1 << 20)}

    response = await webhooks.post(event)

    assert_error_shape(response, 413, "payload_too_large")
    assert stored_events(webhooks) == []


async def test_unverified_requests_from_one_address_are_throttled_but_signed_ones_are_not(
        webhooks: Webhooks) -> None:
    payload = raw_event("customer.subscription.created")
    bad = signed_headers(payload, secret=webhook_secret("forged"))
    limit = webhooks.runtime.settings.billing.webhook_unverified_rate_per_minute
    await start_of_a_fresh_minute_window()  # the limiter counts per minute: keep these requests in one
    statuses = [(await webhooks.post(payload, headers=bad)).status_code for _ in range(limit + 2)]

    throttled = await webhooks.post(payload, headers=bad)
    signed = await webhooks.post(payload)

    assert 429 in statuses[limit - 1:] and set(statuses[:limit - 1]) == {400}
    assert_error_shape(throttled, 429, "rate_limited")
    assert throttled.headers["Retry-After"].isdigit()
    assert signed.status_code == 200 and signed.json()["status"] == "processed"


async def test_without_a_webhook_secret_the_endpoint_answers_503_and_stores_nothing(tmp_path: Path) -> None:
    env = environment(tmp_path)
    del env["STRIPE_WEBHOOK_SECRET"]
    settings = load_settings(env)
    async with Runtime(settings).opened() as runtime:
        app = Starlette(routes=webhook_routes(lambda: runtime.store, settings.billing))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            payload = raw_event("customer.subscription.created")
            response = await client.post(PATH, content=payload, headers=signed_headers(payload))
        events = await runtime.store.list_events()

    body = assert_error_shape(response, 503, "webhooks_not_configured")
    assert "STRIPE_WEBHOOK_SECRET" in body["error"]["message"]
    assert events == []


async def test_another_method_is_answered_405_in_the_error_shape(webhooks: Webhooks) -> None:
    response = await webhooks.client.get(PATH)

    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


async def test_the_answer_echoes_the_event_and_never_the_payload(webhooks: Webhooks) -> None:
    response = await webhooks.post_fixture("checkout.session.completed")

    text = json.dumps(response.json())
    assert "example@example.com" not in text
    assert "cs_test_" not in text


async def test_a_signed_event_that_is_not_utf8_is_refused_with_400(webhooks: Webhooks) -> None:
    # JSON's other encodings parse (json.loads detects UTF-16), but Stripe sends UTF-8 and the body is stored as text.
    payload = json.dumps(load_event("customer.subscription.created")).encode("utf-16")

    response = await webhooks.post(payload, headers=signed_headers(payload))

    body = assert_error_shape(response, 400, "invalid_payload")
    assert "UTF-8" in body["error"]["message"]
    assert stored_events(webhooks) == []
