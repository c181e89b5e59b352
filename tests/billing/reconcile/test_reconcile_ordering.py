"""Newer wins between reads and events, in Stripe's clock: a webhook that lands while a run is between
its read and its fix is never overwritten by the older read, and an event older than a read that
arrives after it changes nothing."""

from __future__ import annotations

import pytest

from billing.access import Denial
from billing.reconcile.drift import DriftKind
from billing.reconcile.heal import Healer
from billing.reconcile.scan import Scanner
from billing.stripe_reads import StripeReads
from billing.webhooks.processor import WebhookProcessor
from tests.billing.reconcile.reconcile_support import PERSONAL, TEAM, World


def scanner(world: World) -> Scanner:
    return Scanner(StripeReads(world.gateway), world.runtime.store, world.runtime.settings.billing,
                   now=lambda: int(world.clock()), since=None,
                   event_types=world.registry.event_types)


def healer(world: World) -> Healer:
    config = world.runtime.settings.billing
    return Healer(world.runtime.store, config, WebhookProcessor(world.runtime.store, config), clock=world.clock)


@pytest.mark.parametrize("our_clock_ahead", [0, 600], ids=["clocks_agree", "our_clock_10_min_ahead"])
async def test_a_webhook_newer_than_the_read_is_never_overwritten_by_it(world: World, our_clock_ahead: float) -> None:
    world.clock.now -= our_clock_ahead  # Stripe's clock (the fake's) behind this machine's wall clock
    sub = world.life.buy("ann@example.com", TEAM, tier="team")
    await world.deliver_new()
    await world.mint(sub["id"])
    world.clock.advance()
    world.life.change_price(sub["id"], PERSONAL)
    world.lose_new(stripe_knows=False)
    world.clock.advance()
    findings = [f async for f in scanner(world).subscriptions()]
    assert [f.kinds for f in findings] == [(DriftKind.TIER,)]

    world.clock.advance()  # while the run is between its read and its fix, the customer cancels
    world.life.cancel(sub["id"])
    assert await world.deliver_new() == [200]
    results = await healer(world).heal(findings)

    assert [r.status for r in results] == ["kept_newer"]
    stored = await world.stored(sub["id"])
    assert stored is not None and stored.row.status == "canceled"  # not the active state the read saw
    denial = await world.authorize(sub["id"])
    assert isinstance(denial, Denial) and denial.code == "subscription_ended"
    assert world.rows("SELECT COUNT(*) FROM audit_log WHERE actor = 'reconcile'") == [(0,)]


async def test_a_delayed_event_recovered_or_delivered_late_is_stale_against_a_newer_one(world: World) -> None:
    sub = world.life.buy("bob@example.com", TEAM, tier="team")
    await world.deliver_new()
    world.clock.advance()
    world.life.set_cancel_at_period_end(sub["id"], True)
    world.clock.advance()
    world.life.set_cancel_at_period_end(sub["id"], False)  # changed her mind
    first, second = world.new_events()
    await world.deliver([second])  # the newer one arrives; the older is still being retried by Stripe
    world.clock.advance(2)

    report = await world.reconcile(fix=True)

    assert report.findings == [] and [m.event_id for m in report.missed] == [first["id"]]
    [outcome] = report.recovered
    assert outcome.status == "processed" and outcome.message.startswith("stale")
    assert await world.deliver([first]) == [200]  # Stripe's own retry: a duplicate
    stored = await world.stored(sub["id"])
    assert stored is not None and stored.row.cancel_at_period_end is False
    event = await world.runtime.store.get_event(first["id"])
    assert event is not None and (event.attempts, event.source) == (1, "recovery")


async def test_a_delayed_event_older_than_a_healing_read_changes_nothing(world: World) -> None:
    sub = world.life.buy("cid@example.com", TEAM, tier="team")
    await world.deliver_new()
    world.clock.advance()
    world.life.change_price(sub["id"], PERSONAL)
    delayed = world.new_events()  # in flight for a long time
    world.clock.advance(2)
    report = await world.reconcile(fix=True)
    assert [r.status for r in report.healed] == ["healed"]
    healed_at = (await world.row(sub["id"])).row.last_event_created

    assert await world.deliver(delayed) == [200]

    stored = await world.stored(sub["id"])
    assert stored is not None and (stored.row.tier, stored.row.last_event_created) == ("personal", healed_at)


async def test_a_read_in_the_same_second_as_the_last_event_waits_for_the_next_run(world: World) -> None:
    sub = world.life.buy("dee@example.com", TEAM, tier="team")
    await world.deliver_new()
    world.clock.advance()
    world.life.set_status(sub["id"], "past_due")
    await world.deliver_new()
    world.life.change_price(sub["id"], PERSONAL)  # the same second; its webhook is lost
    world.lose_new(stripe_knows=False)

    report = await world.reconcile(fix=True)  # still that second: the read may predate the stored event

    assert [(f.kinds, r.status) for f, r in zip(report.findings, report.healed, strict=True)] == [
        ((DriftKind.TIER,), "kept_newer")]
    assert (await world.row(sub["id"])).row.tier == "team"
    world.clock.advance(2)  # a read that left us a whole second after the event reflects it
    again = await world.reconcile(fix=True)
    assert [r.status for r in again.healed] == ["healed"]
    assert (await world.row(sub["id"])).row.tier == "personal"


async def test_a_recovered_event_of_the_same_second_as_a_newer_state_cannot_leave_drift(world: World) -> None:
    sub = world.life.buy("eve@example.com", TEAM, tier="team")
    customer = sub["customer"]
    await world.deliver_new()
    world.clock.advance()
    world.life.renew(sub["id"])
    world.life.change_email(customer, "eve.old@example.com")
    world.lose_new(stripe_knows=True)  # our endpoint was down: Stripe lists them as undelivered
    world.life.change_price(sub["id"], PERSONAL)  # the same second: the newer state, delivered
    world.life.change_email(customer, "eve.new@example.com")
    assert await world.deliver_new() == [200, 200]
    world.clock.advance(2)
    assert (await world.reconcile(fix=False)).findings == []  # the store agrees; only the events are missed

    report = await world.reconcile(fix=True)

    # Applied late, each old event wins its second's tie and undoes the newer state; the read heals it.
    assert [o.status for o in report.recovered] == ["processed", "processed"]
    assert [(f.kinds, r.status) for f, r in zip(report.findings, report.healed, strict=True)] == [
        ((DriftKind.TIER, DriftKind.EMAIL), "healed")]
    stored = await world.stored(sub["id"])
    assert stored is not None and (stored.row.tier, stored.email) == ("personal", "eve.new@example.com")
    world.clock.advance(2)
    assert (await world.reconcile(fix=False)).drift == 0
