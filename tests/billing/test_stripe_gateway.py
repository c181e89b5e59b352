"""StripeGateway talks real HTTP to the fake Stripe and returns dicts or one error type."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import stripe

from billing.stripe_gateway import StripeGateway, StripeGatewayError, stripe_mode
from tests.fakes.stripe_fake import FakeStripe, run_fake_stripe

PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
SEEDED_CUSTOMER = "cus_QXg1o8vcGmoR32"
SEEDED_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
KEY = "sk_test_gateway_secret_123"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def gateway(fake: FakeStripe) -> AsyncIterator[StripeGateway]:
    async with StripeGateway(KEY, fake.base_url) as gateway:
        yield gateway


@pytest.fixture
def no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's own backoff (0.5 s and up) between retries; the retry logic itself is kept.
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe._http_client.HTTPClient, "MAX_DELAY", 0)


def checkout_params() -> dict:
    return {
        "mode": "subscription",
        "line_items": [{"price": PERSONAL_PRICE, "quantity": 1}],
        "success_url": "https://app.example/ok",
        "cancel_url": "https://app.example/cancel",
        "customer_email": "buyer@example.com",
        "subscription_data": {"metadata": {"tier": "personal"}},
    }


async def test_checkout_session_is_created_as_a_plain_dict_with_our_idempotency_key(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    session = await gateway.create_checkout_session(checkout_params(), idempotency_key="checkout-user42-1")

    assert type(session) is dict
    assert session["url"] == f"https://checkout.stripe.com/c/pay/{session['id']}"
    assert type(session["metadata"]) is dict
    sent = fake.requests_to("POST", "/v1/checkout/sessions")
    assert [r.idempotency_key for r in sent] == ["checkout-user42-1"]
    assert sent[0].headers["authorization"] == f"Bearer {KEY}"


async def test_repeating_a_checkout_with_the_same_key_returns_the_same_session(
    gateway: StripeGateway,
) -> None:
    first = await gateway.create_checkout_session(checkout_params(), idempotency_key="same")
    again = await gateway.create_checkout_session(checkout_params(), idempotency_key="same")

    assert again["id"] == first["id"]


async def test_a_checkout_without_our_key_still_gets_one_from_the_sdk(gateway: StripeGateway, fake: FakeStripe) -> None:
    await gateway.create_checkout_session(checkout_params(), idempotency_key=None)

    assert fake.requests[-1].idempotency_key


async def test_a_completed_session_and_its_subscription_can_be_retrieved(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    created = await gateway.create_checkout_session(checkout_params(), idempotency_key=None)
    fake.complete_session(created["id"])

    session = await gateway.retrieve_checkout_session(created["id"])
    subscription = await gateway.retrieve_subscription(session["subscription"])

    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    assert subscription["customer"] == session["customer"]
    assert subscription["items"]["data"][0]["price"]["id"] == PERSONAL_PRICE


async def test_an_unknown_session_is_reported_as_not_found(gateway: StripeGateway) -> None:
    with pytest.raises(StripeGatewayError) as raised:
        await gateway.retrieve_checkout_session("cs_test_missing")

    error = raised.value
    assert (error.http_status, error.code, error.not_found) == (404, "resource_missing", True)
    assert error.message == "No such checkout.session: 'cs_test_missing'"
    assert error.request_id and error.request_id.startswith("req_")


async def test_a_portal_session_is_created_for_a_known_customer(gateway: StripeGateway, fake: FakeStripe) -> None:
    portal = await gateway.create_portal_session(SEEDED_CUSTOMER, "https://app.example/account")

    assert (portal["customer"], portal["return_url"]) == (SEEDED_CUSTOMER, "https://app.example/account")
    assert fake.requests[-1].params == {
        "customer": SEEDED_CUSTOMER,
        "return_url": "https://app.example/account",
    }


async def test_a_portal_session_for_an_unknown_customer_is_not_found(gateway: StripeGateway) -> None:
    with pytest.raises(StripeGatewayError) as raised:
        await gateway.create_portal_session("cus_missing", "https://app.example/account")

    assert raised.value.not_found
    assert raised.value.message == "No such customer: 'cus_missing'"


async def test_a_declined_card_keeps_stripes_code_and_message(gateway: StripeGateway, fake: FakeStripe) -> None:
    fake.fail_next(402)

    with pytest.raises(StripeGatewayError) as raised:
        await gateway.create_checkout_session(checkout_params(), idempotency_key="k")

    assert (raised.value.http_status, raised.value.code) == (402, "card_declined")
    assert raised.value.message == "Your card was declined."
    assert not raised.value.not_found


async def test_a_server_error_stripe_says_not_to_retry_is_raised_at_once(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.fail_next(500, should_retry=False)

    with pytest.raises(StripeGatewayError) as raised:
        await gateway.retrieve_subscription(SEEDED_SUBSCRIPTION)

    assert raised.value.http_status == 500
    assert len(fake.requests) == 1


@pytest.mark.usefixtures("no_retry_backoff")
async def test_a_transient_server_error_is_retried_with_the_same_idempotency_key(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.fail_next(500)

    session = await gateway.create_checkout_session(checkout_params(), idempotency_key="retry-me")

    sent = fake.requests_to("POST", "/v1/checkout/sessions")
    assert [r.idempotency_key for r in sent] == ["retry-me", "retry-me"]
    assert session["id"] in fake.state.checkout_sessions


@pytest.mark.usefixtures("no_retry_backoff")
async def test_persistent_server_errors_surface_after_two_retries(gateway: StripeGateway, fake: FakeStripe) -> None:
    fake.fail_next(503, times=3)

    with pytest.raises(StripeGatewayError) as raised:
        await gateway.retrieve_subscription(SEEDED_SUBSCRIPTION)

    assert raised.value.http_status == 503
    assert len(fake.requests) == 3


@pytest.mark.usefixtures("no_retry_backoff")
async def test_an_unreachable_stripe_is_one_gateway_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async with StripeGateway(KEY, f"http://127.0.0.1:{closed_port}", timeout=5) as gateway:
        with pytest.raises(StripeGatewayError) as raised:
            await gateway.retrieve_subscription(SEEDED_SUBSCRIPTION)

    assert raised.value.message == "Stripe could not be reached"
    assert raised.value.http_status is None


async def test_a_refused_key_never_appears_in_the_error_or_the_logs(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk_live_" + "do_not_leak_9876"  # built at run time: no key-shaped literal
    caplog.set_level("DEBUG")

    async with StripeGateway(secret, fake.base_url) as gateway:
        with pytest.raises(StripeGatewayError) as raised:
            await gateway.retrieve_subscription(SEEDED_SUBSCRIPTION)

    assert raised.value.http_status == 401
    assert secret not in str(raised.value)
    assert secret not in repr(gateway)
    assert secret not in caplog.text


def test_the_key_prefix_decides_test_or_live_mode() -> None:
    assert stripe_mode("sk_test_abc") == "test"
    assert stripe_mode("sk_live_" + "abc") == "live"
    assert stripe_mode("rk_live_abc") == "live"
