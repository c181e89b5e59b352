"""The meter-event sender against the fake Stripe over HTTP: each overage call billed exactly once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from billing.config import BillingConfig
from billing.meter_sender import MeterEventSender
from billing.store import SQLiteStore, Store
from billing.stripe_gateway import StripeGateway
from billing.subscription_state import SubscriptionState
from tests.fakes.fixtures import METER_EVENT_NAME as EVENT_NAME
from tests.fakes.fixtures import OVERAGE_PRICE, run_metered_fake_stripe
from tests.fakes.stripe_fake import FakeStripe

CUSTOMER = "cus_QXg1o8vcGmoR32"  # seeded in the fake
SUB = "sub_meter_sender"
KEY = "sk_test_meter_sender_0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_metered_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SQLiteStore.open(tmp_path / "kamiyo.db")
    try:
        async with opened.webhook_transaction(int(time.time())) as tx:
            user_id = await tx.ensure_stripe_customer(CUSTOMER, email="team@example.com", name=None, event_created=1)
            await tx.write_subscription(SUB, user_id, SubscriptionState("team", "active", None, False, 1))
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def gateway(fake: FakeStripe) -> AsyncIterator[StripeGateway]:
    async with StripeGateway(KEY, fake.base_url) as opened:
        yield opened


def sender_for(store: Store, gateway: StripeGateway, clock: Clock, *, per_second: int = 1000,
               batch: int = 100) -> MeterEventSender:
    config = BillingConfig("https://kamiyo.test", stripe_secret_key=KEY, overage_price=OVERAGE_PRICE,
                           meter_event_name=EVENT_NAME, meter_events_per_second=per_second)
    return MeterEventSender(store, lambda: gateway, config, clock=clock, rand=lambda: 0.5, batch=batch)


async def overage_calls(store: Store, count: int, at: float, prefix: str = "call") -> list[str]:
    """Meter-event rows as the admit-and-count statement writes them, one per overage call."""
    identifiers = [f"{prefix}_{i:04d}" for i in range(count)]
    async with store.transaction() as db:
        for identifier in identifiers:
            await db.execute("INSERT INTO meter_events (identifier, subscription_id, occurred_at, next_attempt_at)"
                             " VALUES (?, ?, ?, ?)", (identifier, SUB, int(at), int(at)))
    return identifiers


async def drain(sender: MeterEventSender, clock: Clock, store: Store, *, step: float = 5, passes: int = 200) -> None:
    """Run passes, moving the clock on, until nothing is left to send or cancel."""
    for _ in range(passes):
        await sender.send_due()
        due = await store.next_meter_event_due()
        if due is None:
            return
        clock.now = max(clock.now + step, float(due))
    raise AssertionError("events still due after every pass")


async def test_every_overage_call_reaches_stripe_once_with_its_identifier(store: Store, gateway: StripeGateway,
                                                                        fake: FakeStripe) -> None:
    clock = Clock()
    called_at = int(clock.now)
    identifiers = await overage_calls(store, 250, called_at)
    await drain(sender_for(store, gateway, clock, batch=100), clock, store)
    assert sorted(fake.billed_identifiers()) == identifiers
    sent = fake.requests_to("POST", "/v1/billing/meter_events")
    assert len(sent) == 250 and all(r.idempotency_key == r.params["identifier"] for r in sent)
    assert all(r.params["payload"] == {"stripe_customer_id": CUSTOMER, "value": "1"} for r in sent)
    assert {r.params["timestamp"] for r in sent} == {called_at} and {r.params["event_name"] for r in sent} == {
        EVENT_NAME}
    counts = await store.meter_event_counts()
    assert counts["sent"] == 250 and counts["pending"] == 0


async def test_stripe_failing_for_a_while_delays_events_but_bills_each_once(store: Store, gateway: StripeGateway,
                                                                           fake: FakeStripe) -> None:
    clock = Clock()
    identifiers = await overage_calls(store, 30, clock.now)
    fake.fail_next(500, times=25)
    fake.fail_next(429, times=10)
    sender = sender_for(store, gateway, clock)
    await sender.send_due()
    assert fake.billed_identifiers() == [] and (await store.meter_event_counts())["pending"] == 30
    await drain(sender, clock, store, step=30)
    assert sorted(fake.billed_identifiers()) == identifiers
    assert len(set(fake.billed_identifiers())) == 30


async def test_a_send_whose_answer_was_lost_is_not_billed_twice(store: Store, gateway: StripeGateway,
                                                               fake: FakeStripe) -> None:
    clock = Clock()
    identifiers = await overage_calls(store, 5, clock.now)
    # A sender took the rows and posted them, then died before recording it (kill -9 mid-send).
    taken = await store.take_due_meter_events(int(clock.now), lease_until=int(clock.now) + 30, limit=10)
    for row in taken:
        await gateway.create_meter_event(EVENT_NAME, customer=CUSTOMER, identifier=row.identifier,
                                         timestamp=row.occurred_at)
    # One more reached Stripe under another key (e.g. after the idempotency key expired).
    fake.billing.create_meter_event({"event_name": EVENT_NAME, "identifier": "late_dup", "timestamp": int(clock.now),
                                     "payload": {"stripe_customer_id": CUSTOMER, "value": "1"}})
    await overage_calls(store, 1, clock.now, prefix="late_dup")
    async with store.transaction() as db:
        await db.execute("UPDATE meter_events SET identifier = 'late_dup' WHERE identifier = 'late_dup_0000'")
    clock.now += 31  # the dead sender's lease ends
    await drain(sender_for(store, gateway, clock), clock, store)
    assert sorted(fake.billed_identifiers()) == sorted([*identifiers, "late_dup"])
    assert (await store.meter_event_counts())["sent"] == 6


async def test_a_call_that_failed_in_its_tool_is_never_sent_or_is_cancelled(store: Store, gateway: StripeGateway,
                                                                           fake: FakeStripe) -> None:
    clock = Clock()
    await overage_calls(store, 3, clock.now)
    assert await store.void_meter_event("call_0000", now=int(clock.now)) == "voided"
    sender = sender_for(store, gateway, clock)
    await drain(sender, clock, store)
    assert await store.void_meter_event("call_0001", now=int(clock.now)) == "cancel_pending"
    await drain(sender, clock, store)
    assert fake.billed_identifiers() == ["call_0002"]
    (adjustment,) = fake.requests_to("POST", "/v1/billing/meter_event_adjustments")
    assert adjustment.params == {"event_name": EVENT_NAME, "type": "cancel", "cancel": {"identifier": "call_0001"}}
    assert "call_0000" not in {r.params["identifier"] for r in fake.requests_to("POST", "/v1/billing/meter_events")}
    counts = await store.meter_event_counts()
    assert (counts["voided"], counts["cancelled"], counts["sent"]) == (1, 1, 1)


async def test_an_event_stripe_refuses_for_good_is_kept_as_failed_with_its_error(store: Store, tmp_path: Path,
                                                                                gateway: StripeGateway) -> None:
    clock = Clock()
    async with store.webhook_transaction(int(clock.now)) as tx:
        user_id = await tx.ensure_stripe_customer("cus_unknown_to_stripe", email="x@example.com", name=None,
                                                  event_created=1)
        await tx.write_subscription("sub_other", user_id, SubscriptionState("team", "active", None, False, 1))
    async with store.transaction() as db:
        await db.execute("INSERT INTO meter_events (identifier, subscription_id, occurred_at, next_attempt_at)"
                         " VALUES ('orphan', 'sub_other', ?, ?)", (int(clock.now), int(clock.now)))
    await drain(sender_for(store, gateway, clock), clock, store)
    counts = await store.meter_event_counts()
    assert counts["failed"] == 1 and counts["pending"] == 0
