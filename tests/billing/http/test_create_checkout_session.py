"""POST /api/billing/create-checkout-session through the real app to the fake Stripe."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.billing.http.app_harness import (
    PERSONAL_PRICE,
    PUBLIC_URL,
    SECRET_KEY,
    SEEDED_CUSTOMER,
    SEEDED_SUBSCRIPTION,
    TEAM_PRICE,
    assert_error_shape,
    checkout_body,
    environment,
    running_app,
    stripe_params,
)
from tests.fakes.stripe_fake import FakeStripe
from tests.support import mint_token

SESSIONS = "/v1/checkout/sessions"


async def test_a_checkout_is_a_subscription_session_for_the_tiers_price_with_the_tier_in_metadata(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.checkout(checkout_body(tier="team"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"checkout_url", "session_id", "expires_at"}
    assert body["session_id"].startswith("cs_test_")
    assert body["checkout_url"] == f"https://checkout.stripe.com/c/pay/{body['session_id']}"
    stripe_expiry = billing.fake.state.checkout_sessions[body["session_id"]]["expires_at"]
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromtimestamp(stripe_expiry, UTC)
    params = stripe_params(billing)
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": TEAM_PRICE, "quantity": 1}]
    assert params["metadata"] == {"tier": "team"}
    assert params["subscription_data"] == {"metadata": {"tier": "team"}}
    assert params["customer_email"] == "buyer@example.com"
    assert "customer" not in params
    assert params["client_reference_id"].startswith("email_")
    assert params["allow_promotion_codes"] is True
    assert params["billing_address_collection"] == "required"
    assert params["success_url"] == f"{PUBLIC_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert params["cancel_url"] == f"{PUBLIC_URL}/pricing"
    assert "automatic_tax" not in params


@pytest.mark.parametrize(
    ("success_url", "sent"),
    [
        (f"{PUBLIC_URL}/ok?sid={{CHECKOUT_SESSION_ID}}", f"{PUBLIC_URL}/ok?sid={{CHECKOUT_SESSION_ID}}"),
        (f"{PUBLIC_URL}/ok?plan=team#top", f"{PUBLIC_URL}/ok?plan=team&session_id={{CHECKOUT_SESSION_ID}}#top"),
        ("https://APP.kamiyo.test:443/done", "https://APP.kamiyo.test:443/done?session_id={CHECKOUT_SESSION_ID}"),
    ],
)
async def test_the_success_url_carries_the_session_placeholder_exactly_once(
    env: dict[str, str], fake: FakeStripe, success_url: str, sent: str
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.checkout(checkout_body(success_url=success_url))

    assert response.status_code == 200, response.text
    assert stripe_params(billing)["success_url"] == sent


async def test_the_clients_idempotency_key_reaches_stripe_and_a_retry_returns_the_same_session(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        first = await billing.checkout(headers={"Idempotency-Key": "order-7f3a"})
        again = await billing.checkout(headers={"Idempotency-Key": "order-7f3a"})
        other = await billing.checkout()

    assert first.status_code == again.status_code == other.status_code == 200
    assert again.json() == first.json()
    assert other.json()["session_id"] != first.json()["session_id"]
    keys = [r.idempotency_key for r in billing.stripe_calls("POST", SESSIONS)]
    assert keys[:2] == ["order-7f3a", "order-7f3a"]
    assert keys[2] != "order-7f3a"  # without a client key the SDK makes up its own


async def test_an_idempotency_key_reused_for_another_checkout_answers_409_not_a_stripe_failure(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        first = await billing.checkout(headers={"Idempotency-Key": "order-1"})
        other = await billing.checkout(checkout_body(tier="team"), headers={"Idempotency-Key": "order-1"})

    assert first.status_code == 200
    body = assert_error_shape(other, 409, "idempotency_conflict")
    assert "order-1" in body["error"]["message"]
    assert body["stripe_request_id"].startswith("req_")


async def signed_in_customer(billing: Any) -> tuple[str, str]:
    """The customer the real webhook path records (example@example.com) and a token of theirs."""
    assert (await billing.post_event("checkout.session.completed")).status_code == 200
    user_id = await billing.runtime.store.find_user_id("example@example.com")
    return user_id, await mint_token(billing.runtime, user_id, SEEDED_SUBSCRIPTION)


async def test_the_signed_in_owner_of_a_known_email_reuses_that_stripe_customer(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        user_id, token = await signed_in_customer(billing)
        response = await billing.checkout(checkout_body(tier="team", user_email=" Example@Example.com "),
                                          headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    params = stripe_params(billing)
    assert params["customer"] == SEEDED_CUSTOMER
    assert "customer_email" not in params
    assert params["client_reference_id"] == user_id
    assert "customer_update" not in params


async def test_a_known_email_without_its_owners_token_checks_out_as_a_new_customer(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        user_id, _ = await signed_in_customer(billing)
        anonymous = await billing.checkout(checkout_body(user_email="example@example.com"))
        stranger = await billing.runtime.authority.issue_grant("stranger@example.com", "personal")
        foreign = await billing.checkout(checkout_body(user_email="example@example.com"),
                                         headers={"Authorization": f"Bearer {stranger.token}"})

    assert anonymous.status_code == foreign.status_code == 200
    for params in (r.params for r in billing.stripe_calls("POST", SESSIONS)):
        assert params["customer_email"] == "example@example.com"
        assert "customer" not in params and params["client_reference_id"] != user_id


async def test_an_operator_only_customer_is_referenced_but_checks_out_by_email(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        grant = await billing.runtime.authority.issue_grant("buyer@example.com", "personal")
        response = await billing.checkout(headers={"Authorization": f"Bearer {grant.token}"})

    assert response.status_code == 200, response.text
    params = stripe_params(billing)
    assert params["customer_email"] == "buyer@example.com"
    assert params["client_reference_id"] == grant.user_id


async def test_automatic_tax_is_asked_for_when_enabled_and_keeps_a_known_customers_address(
    tmp_path: Path, fake: FakeStripe
) -> None:
    env = environment(tmp_path, fake, KAMIYO_CHECKOUT_AUTOMATIC_TAX="true")
    async with running_app(env, fake) as billing:
        _, token = await signed_in_customer(billing)
        new = await billing.checkout()
        known = await billing.checkout(checkout_body(user_email="example@example.com"),
                                       headers={"Authorization": f"Bearer {token}"})

    assert new.status_code == known.status_code == 200
    new_params, known_params = (r.params for r in billing.stripe_calls("POST", SESSIONS))
    assert new_params["automatic_tax"] == {"enabled": True}
    assert "customer_update" not in new_params
    assert known_params["automatic_tax"] == {"enabled": True}
    assert known_params["customer_update"] == {"address": "auto", "name": "auto"}


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown tier", checkout_body(tier="gold"), "invalid_tier", "unknown tier 'gold'"),
    ("tier without a price", checkout_body(tier="enterprise"), "tier_not_available", "STRIPE_PRICE_MCP_ENTERPRISE"),
    ("bad email", checkout_body(user_email="not-an-email"), "invalid_email", "not a valid email"),
    ("email without a domain dot", checkout_body(user_email="a@localhost"), "invalid_email", "not a valid email"),
    ("success URL elsewhere", checkout_body(success_url="https://evil.example/ok"), "redirect_not_allowed",
     "success_url must be on an allowed origin"),
    ("cancel URL elsewhere", checkout_body(cancel_url="https://kamiyo.test.evil.example/"), "redirect_not_allowed",
     "cancel_url"),
    ("URL with credentials", checkout_body(success_url="https://kamiyo.test@evil.example/"),
     "invalid_redirect_url", "success_url"),
    ("relative URL", checkout_body(cancel_url="//evil.example/x"), "invalid_redirect_url", "absolute"),
    ("javascript URL", checkout_body(success_url="javascript:alert(1)"), "invalid_redirect_url", "absolute"),
    ("other port", checkout_body(success_url="https://kamiyo.test:8443/ok"), "redirect_not_allowed", "8443"),
    ("plain http", checkout_body(success_url="http://kamiyo.test/ok"), "redirect_not_allowed", "http://"),
    ("missing field", {"tier": "personal", "user_email": "a@b.co", "success_url": f"{PUBLIC_URL}/"},
     "missing_field", "cancel_url is required"),
    ("wrong type", checkout_body(tier=["personal"]), "invalid_field", "tier must be a string"),
]


@pytest.mark.parametrize(("case", "body", "code", "message"), REFUSED, ids=[case[0] for case in REFUSED])
async def test_a_refused_checkout_answers_400_with_a_precise_message_and_never_reaches_stripe(
    env: dict[str, str], fake: FakeStripe, case: str, body: dict[str, Any], code: str, message: str
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.checkout(body)

    error = assert_error_shape(response, 400, code)["error"]
    assert message in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "invalid_body"),
        (b"", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"tier=personal", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"{}", {"Content-Type": "application/json", "Idempotency-Key": ""}, 400, "invalid_idempotency_key"),
        (b"{}", {"Content-Type": "application/json", "Idempotency-Key": "k" * 256}, 400, "invalid_idempotency_key"),
    ],
)
async def test_an_unusable_body_or_header_is_refused_without_calling_stripe(
    env: dict[str, str], fake: FakeStripe, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.client.post("/api/billing/create-checkout-session", content=content,
                                             headers=headers)

    assert_error_shape(response, status, code)
    assert fake.requests == []


async def test_a_body_over_64_kib_is_refused_with_413_whether_announced_or_streamed(
    env: dict[str, str], fake: FakeStripe
) -> None:
    big = checkout_body(padding="x" * (64 * 1024))

    async def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"padding": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    async with running_app(env, fake) as billing:
        announced = await billing.checkout(big)
        streamed = await billing.client.post("/api/billing/create-checkout-session", content=chunks(),
                                             headers={"Content-Type": "application/json"})
        just_under = await billing.checkout(checkout_body(padding="x" * (60 * 1024)))

    assert_error_shape(announced, 413, "payload_too_large")
    assert_error_shape(streamed, 413, "payload_too_large")
    assert just_under.status_code == 200


async def test_stripes_refusal_answers_502_with_stripes_message_and_request_id(
    env: dict[str, str], fake: FakeStripe
) -> None:
    fake.fail_next(400, {"message": "No such price: 'price_1PgafmB7WZ01zgkW6dKueIc5'", "code": "resource_missing"})
    async with running_app(env, fake) as billing:
        response = await billing.checkout()

    body = assert_error_shape(response, 502, "stripe_error")
    assert body["error"]["message"] == f"Stripe refused the request: No such price: '{PERSONAL_PRICE}'"
    assert body["stripe_request_id"].startswith("req_")
    assert body["stripe_code"] == "resource_missing"
    assert body["stripe_status"] == 400


async def test_a_stripe_outage_answers_502_and_no_stack_trace(env: dict[str, str], fake: FakeStripe) -> None:
    fake.fail_next(500, should_retry=False)
    async with running_app(env, fake) as billing:
        response = await billing.checkout()

    body = assert_error_shape(response, 502, "stripe_error")
    assert "An unknown error occurred" in body["error"]["message"]
    assert body["stripe_status"] == 500


async def test_checkout_creation_is_limited_per_client_address_with_retry_after(
    tmp_path: Path, fake: FakeStripe
) -> None:
    env = environment(tmp_path, fake, KAMIYO_CHECKOUT_RATE_PER_MINUTE="2")
    async with running_app(env, fake) as billing:
        allowed = [await billing.checkout() for _ in range(2)]
        limited = await billing.checkout()
        other_address = await billing.client_for("198.51.100.4").post(
            "/api/billing/create-checkout-session", json=checkout_body())

    assert [r.status_code for r in allowed] == [200, 200]
    assert_error_shape(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "40"  # the window turns 40 s after the frozen clock
    assert other_address.status_code == 200
    assert len(billing.stripe_calls("POST", SESSIONS)) == 3


async def test_our_logs_hold_no_session_id_email_or_key(
    env: dict[str, str], fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_app(env, fake) as billing:
        created = (await billing.checkout()).json()
        await billing.client.get(f"/api/billing/checkout-session/{created['session_id']}")
        fake.fail_next(402)
        await billing.checkout()

    # Only our loggers: the stripe SDK and httpx log request URLs (session ids) at INFO themselves.
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("billing"))
    assert "checkout session created for tier personal" in logged
    for secret in (created["session_id"], "buyer@example.com", SECRET_KEY):
        assert secret not in logged
