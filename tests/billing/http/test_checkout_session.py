"""GET /api/billing/checkout-session/{session_id}: what the success page shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.billing.http.app_harness import assert_error_shape, checkout_body, environment, running_app
from tests.fakes.stripe_fake import FakeStripe


async def test_a_paid_session_shows_its_buyer_tier_amount_subscription_and_customer(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        created = (await billing.checkout(checkout_body(tier="team"))).json()
        open_view = (await billing.client.get(f"/api/billing/checkout-session/{created['session_id']}")).json()
        paid = fake.complete_session(created["session_id"])
        response = await billing.client.get(f"/api/billing/checkout-session/{created['session_id']}")

    assert open_view["status"] == "open" and open_view["payment_status"] == "unpaid"
    assert open_view["subscription_id"] is None and open_view["customer_id"] is None
    assert response.status_code == 200
    assert response.json() == {
        "session_id": created["session_id"],
        "status": "complete",
        "customer_email": "buyer@example.com",
        "tier": "team",
        "amount_total": paid["amount_total"],
        "currency": paid["currency"],
        "subscription_id": paid["subscription"],
        "customer_id": paid["customer"],
        "payment_status": "paid",
    }
    assert paid["subscription"].startswith("sub_") and paid["customer"].startswith("cus_")


async def test_an_unknown_session_id_answers_404(env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.client.get("/api/billing/checkout-session/cs_test_doesnotexist42")

    body = assert_error_shape(response, 404, "session_not_found")
    assert "cs_test_doesnotexist42" in body["error"]["message"]
    assert [r.path for r in fake.requests] == ["/v1/checkout/sessions/cs_test_doesnotexist42"]


@pytest.mark.parametrize(
    "session_id",
    ["nope", "cs_test_", "cs_prod_abc", "cs_test_abc%2F..%2Fcustomers", "cs_test_a-b", "pi_123", "cs_test_x/y", "",
     "cs_test_a%0Ab", "%C3%8B%0A%2A"],
)
async def test_a_malformed_session_id_answers_400_without_calling_stripe(
    env: dict[str, str], fake: FakeStripe, session_id: str
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.client.get(f"/api/billing/checkout-session/{session_id}")

    assert_error_shape(response, 400, "invalid_session_id")
    assert fake.requests == []


async def test_lookups_are_rate_limited_per_client_before_stripe_is_asked(tmp_path: Path, fake: FakeStripe) -> None:
    env = environment(tmp_path, fake, KAMIYO_CHECKOUT_LOOKUP_RATE_PER_MINUTE="3")
    async with running_app(env, fake) as billing:
        answers = [await billing.client.get(f"/api/billing/checkout-session/cs_test_guess{n}") for n in range(5)]
        other = await billing.client_for("198.51.100.77").get("/api/billing/checkout-session/cs_test_guess9")

    assert [a.status_code for a in answers] == [404, 404, 404, 429, 429]
    body = assert_error_shape(answers[3], 429, "rate_limited")
    assert "retry" in body["error"]["message"] and int(answers[3].headers["retry-after"]) > 0
    assert other.status_code == 404  # another client has its own window
    assert len(fake.requests_to("GET", "/v1/checkout/sessions/cs_test_guess3")) == 0
    assert len(fake.requests) == 4  # three guesses and the other client's: a refused lookup costs Stripe nothing


async def test_a_session_id_of_the_other_stripe_mode_answers_400_without_calling_stripe(
        env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:  # a test-mode key: no live session can exist
        response = await billing.client.get("/api/billing/checkout-session/cs_live_a1B2c3D4e5F6")

    body = assert_error_shape(response, 400, "invalid_session_id")
    assert "live" in body["error"]["message"] and "test" in body["error"]["message"]
    assert fake.requests == []
