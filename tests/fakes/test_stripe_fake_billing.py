"""The fake's Billing Meters, subscription items and portal flows accept what stripe-python 16 sends and refuse
what Stripe refuses (checked against the SDK's own parameter types: these APIs are newer than the spec copy)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import stripe

from tests.fakes.fixtures import METER_EVENT_NAME as EVENT
from tests.fakes.fixtures import OVERAGE_PRICE as METERED
from tests.fakes.fixtures import run_metered_fake_stripe
from tests.fakes.stripe_fake import FakeStripe

CUSTOMER = "cus_QXg1o8vcGmoR32"
SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_metered_fake_stripe() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeStripe) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient()
    yield stripe.StripeClient("sk_test_fake", base_addresses={"api": fake.base_url}, max_network_retries=0,
                              http_client=http)
    http.close()


def meter_event(client: stripe.StripeClient, identifier: str, **overrides: object) -> stripe.StripeObject:
    params = {"event_name": EVENT, "identifier": identifier, "timestamp": int(time.time()),
              "payload": {"stripe_customer_id": CUSTOMER, "value": "1"}, **overrides}
    return client.v1.billing.meter_events.create(params=params)


def refused(call: object) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as caught:
        call()
    return caught.value


def test_a_meter_event_is_accepted_once_per_identifier(client: stripe.StripeClient, fake: FakeStripe) -> None:
    accepted = meter_event(client, "call_1")
    assert (accepted["object"], accepted["identifier"], accepted["payload"]["value"]) == (
        "billing.meter_event", "call_1", "1")
    duplicate = refused(lambda: meter_event(client, "call_1"))
    assert duplicate.http_status == 400 and "already exists with identifier call_1" in str(duplicate.user_message)
    assert duplicate.headers is not None and duplicate.headers.get("stripe-should-retry") == "false"
    assert fake.billed_identifiers() == ["call_1"]


def test_an_idempotent_resend_replays_stripes_first_answer(client: stripe.StripeClient, fake: FakeStripe) -> None:
    params = {"event_name": EVENT, "identifier": "call_r", "timestamp": int(time.time()),
              "payload": {"stripe_customer_id": CUSTOMER, "value": "1"}}
    first = client.v1.billing.meter_events.create(params=params, options={"idempotency_key": "call_r"})
    again = client.v1.billing.meter_events.create(params=params, options={"idempotency_key": "call_r"})
    assert first["identifier"] == again["identifier"] and fake.billed_identifiers() == ["call_r"]


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"event_name": "unknown_meter"}, "event_name"),
        ({"timestamp": -36 * 86_400}, "timestamp"),  # seconds from now, added when the test runs
        ({"timestamp": +600}, "timestamp"),
        ({"payload": {"value": "1"}}, "payload[stripe_customer_id]"),
        ({"payload": {"stripe_customer_id": "cus_nobody", "value": "1"}}, "payload[stripe_customer_id]"),
        ({"payload": {"stripe_customer_id": CUSTOMER, "value": "x"}}, "payload[value]"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_meter_event_stripe_would_refuse_is_refused(client: stripe.StripeClient, overrides: dict[str, object],
                                                      param: str) -> None:
    offset = overrides.get("timestamp")
    if isinstance(offset, int):  # relative to when the test runs, not to collection (the suite is long)
        overrides = {**overrides, "timestamp": int(time.time()) + offset}
    error = refused(lambda: meter_event(client, "bad", **overrides))
    assert error.http_status == 400 and error.error is not None and error.error.param == param


def test_an_adjustment_cancels_an_event_and_is_checked_against_the_sdk_types(client: stripe.StripeClient,
                                                                            fake: FakeStripe) -> None:
    meter_event(client, "call_c")
    adjustment = client.v1.billing.meter_event_adjustments.create(
        params={"event_name": EVENT, "type": "cancel", "cancel": {"identifier": "call_c"}})
    assert adjustment["type"] == "cancel" and fake.billed_identifiers() == []
    error = refused(lambda: client.v1.billing.meter_event_adjustments.create(
        params={"event_name": EVENT, "type": "void"}))
    assert error.http_status == 400 and error.error is not None and error.error.param == "type"


def test_a_metered_item_joins_a_subscription_without_a_quantity(client: stripe.StripeClient, fake: FakeStripe) -> None:
    error = refused(lambda: client.v1.subscription_items.create(
        params={"subscription": SUBSCRIPTION, "price": METERED, "quantity": 1}))
    assert error.http_status == 400 and "Quantity should not be specified" in str(error.user_message)
    item = client.v1.subscription_items.create(params={"subscription": SUBSCRIPTION, "price": METERED})
    assert item["price"]["recurring"]["usage_type"] == "metered" and item["quantity"] is None
    deleted = client.v1.subscription_items.delete(item["id"], params={"proration_behavior": "always_invoice"})
    assert deleted["deleted"] is True
    assert refused(lambda: client.v1.subscription_items.delete(item["id"])).http_status == 404


def test_checkout_refuses_a_quantity_on_a_metered_price(client: stripe.StripeClient) -> None:
    base = {"mode": "subscription", "success_url": "https://k.test/ok", "cancel_url": "https://k.test/no"}
    error = refused(lambda: client.v1.checkout.sessions.create(params={
        **base, "line_items": [{"price": TEAM_PRICE, "quantity": 1}, {"price": METERED, "quantity": 1}]}))
    assert error.http_status == 400 and error.error is not None and error.error.param == "line_items[1][quantity]"
    session = client.v1.checkout.sessions.create(params={
        **base, "line_items": [{"price": TEAM_PRICE, "quantity": 1}, {"price": METERED}]})
    assert session["id"].startswith("cs_test_")


def test_a_portal_confirm_flow_changes_the_price_once_the_customer_confirms(client: stripe.StripeClient,
                                                                           fake: FakeStripe) -> None:
    item = fake.state.subscriptions[SUBSCRIPTION]["items"]["data"][0]["id"]
    flow = {"type": "subscription_update_confirm",
            "subscription_update_confirm": {"subscription": SUBSCRIPTION,
                                            "items": [{"id": item, "price": TEAM_PRICE, "quantity": 1}]},
            "after_completion": {"type": "redirect", "redirect": {"return_url": "https://k.test/done"}}}
    portal = client.v1.billing_portal.sessions.create(params={"customer": CUSTOMER, "return_url": "https://k.test/",
                                                              "flow_data": flow})
    assert portal["flow"]["type"] == "subscription_update_confirm"
    event = fake.complete_portal_flow(portal["id"])
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["object"]["items"]["data"][0]["price"]["id"] == TEAM_PRICE
    assert "items" in event["data"]["previous_attributes"]
    bad = {**flow, "subscription_update_confirm": {"subscription": SUBSCRIPTION, "items": [{"id": "si_nope"}]}}
    error = refused(lambda: client.v1.billing_portal.sessions.create(params={"customer": CUSTOMER, "flow_data": bad}))
    assert error.http_status == 400 and "si_nope" in str(error.user_message)


def test_subscription_metadata_can_be_set_and_unset(client: stripe.StripeClient) -> None:
    updated = client.v1.subscriptions.update(SUBSCRIPTION, params={"metadata": {"overage_cap_usd": "40"}})
    assert updated["metadata"]["overage_cap_usd"] == "40"
    cleared = client.v1.subscriptions.update(SUBSCRIPTION, params={"metadata": {"overage_cap_usd": ""}})
    assert "overage_cap_usd" not in cleared["metadata"]


def test_the_portal_refuses_a_subscription_with_more_than_one_item_and_the_api_changes_its_plan_item(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    plan = fake.state.subscriptions[SUBSCRIPTION]["items"]["data"][0]["id"]
    client.v1.subscription_items.create(params={"subscription": SUBSCRIPTION, "price": METERED})
    flow = {"type": "subscription_update_confirm",
            "subscription_update_confirm": {"subscription": SUBSCRIPTION,
                                            "items": [{"id": plan, "price": TEAM_PRICE, "quantity": 1}]}}
    error = refused(lambda: client.v1.billing_portal.sessions.create(params={"customer": CUSTOMER,
                                                                             "flow_data": flow}))
    assert error.http_status == 400 and "multiple items" in str(error.user_message)

    changed = client.v1.subscriptions.update(SUBSCRIPTION, params={
        "items": [{"id": plan, "price": TEAM_PRICE}], "proration_behavior": "always_invoice",
        "payment_behavior": "pending_if_incomplete"})
    prices = sorted(item["price"]["id"] for item in changed["items"]["data"])
    assert prices == sorted([TEAM_PRICE, METERED])
    metered = next(item["id"] for item in changed["items"]["data"] if item["price"]["id"] == METERED)
    error = refused(lambda: client.v1.subscriptions.update(SUBSCRIPTION, params={
        "items": [{"id": metered, "price": TEAM_PRICE}]}))
    assert error.http_status == 400 and "metered" in str(error.user_message)
