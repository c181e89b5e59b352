"""Every drift kind, made the way it happens in life, is found with the Stripe object and the store row,
healed through the webhooks' path with their effects, and a second run finds nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from billing.access import Denial, Grant
from billing.reconcile.drift import DriftKind
from billing.reconcile.report import Report
from billing.reconcile.runner import Reconciler
from billing.stripe_pacing import Pacer
from billing.webhooks.context import Applied, EventContext
from tests.billing.reconcile.reconcile_support import ENTERPRISE, FOREIGN, PERSONAL, TEAM, World
from tests.billing.test_stripe_pacing import VirtualTime

K = DriftKind


def kinds_of(report: Report) -> dict[str, tuple[DriftKind, ...]]:
    return {finding.subscription_id: finding.kinds for finding in report.findings}


async def bought(world: World, email: str, price: str, tier: str | None) -> str:
    """A subscription bought and fully delivered to us; its id."""
    sub = world.life.buy(email, price, tier=tier)
    assert set(await world.deliver_new()) == {200}
    return str(sub["id"])


async def reconcile_later(world: World, *, fix: bool) -> Report:
    world.clock.advance(2)  # time passes: the read comes after the changes it reflects
    return await world.reconcile(fix=fix)


async def assert_in_sync(world: World) -> None:
    again = await reconcile_later(world, fix=False)
    assert (again.drift, again.result) == (0, "in_sync"), again.lines()


async def test_a_store_that_agrees_with_stripe_reports_no_drift(world: World) -> None:
    await bought(world, "ann@example.com", PERSONAL, "personal")
    await bought(world, "bob@example.com", TEAM, "team")

    report = await reconcile_later(world, fix=False)

    assert (report.drift, report.result, report.stats.stripe_subscriptions) == (0, "in_sync", 2)


async def test_a_subscription_whose_webhooks_never_came_is_found_then_healed_with_a_claim_and_welcome_mail(
        world: World) -> None:
    sub = world.life.buy("Carol@Example.com", TEAM, tier="team")
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=False)

    [finding] = report.findings
    assert finding.kinds == (K.MISSING_HERE, K.ENTITLED_IN_STRIPE)
    assert finding.stripe_object is not None and finding.stripe_object["id"] == sub["id"]
    assert finding.stripe_object["customer"]["email"] == "Carol@Example.com"
    assert finding.stored is None and report.missed == []
    assert await world.stored(sub["id"]) is None  # a report writes nothing

    healed = await reconcile_later(world, fix=True)

    assert [(r.subscription_id, r.status) for r in healed.healed] == [(sub["id"], "healed")]
    assert (healed.result, healed.healed_by_kind()) == ("healed", {"entitled_in_stripe": 1, "missing_here": 1})
    stored = await world.stored(sub["id"])
    assert stored is not None and (stored.row.status, stored.row.tier, stored.email) == ("active", "team",
                                                                                         "carol@example.com")
    assert stored.stripe_customer_id == sub["customer"]
    assert await world.welcome_mails(sub["id"]) == 1
    assert world.rows("SELECT kind FROM claims WHERE subscription_id = ?", (sub["id"],)) == [("email_code",)]
    assert world.rows("SELECT actor, action FROM audit_log WHERE subject = ?", (sub["id"],)) == [
        ("reconcile", "subscription.reconciled")]
    await world.mint(sub["id"])
    assert isinstance(await world.authorize(sub["id"], "monitor_wallet"), Grant)
    await assert_in_sync(world)


async def test_a_cancellation_our_endpoint_answered_500_to_is_recovered_and_access_ends(world: World) -> None:
    sub_id = await bought(world, "dan@example.com", PERSONAL, "personal")
    await world.mint(sub_id)
    real = world.registry.handler_for("customer.subscription.deleted")
    assert real is not None

    async def broken(ctx: EventContext) -> Applied:
        raise RuntimeError("a bug in the handler")

    world.registry.register("customer.subscription.deleted", broken, replace=True)
    world.life.cancel(sub_id)
    assert await world.deliver_new() == [500]
    assert isinstance(await world.authorize(sub_id), Grant)  # the store still says active

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {sub_id: (K.ENDED_IN_STRIPE, K.STATUS)}
    [missed] = report.missed
    assert (missed.type, missed.stored_status) == ("customer.subscription.deleted", "failed")

    world.registry.register("customer.subscription.deleted", real, replace=True)  # the fix is deployed
    healed = await reconcile_later(world, fix=True)

    assert [(o.event_id, o.status) for o in healed.recovered] == [(missed.event_id, "processed")]
    recovered = await world.runtime.store.get_event(missed.event_id)
    assert recovered is not None and (recovered.status, recovered.source, recovered.attempts) == (
        "processed", "recovery", 2)
    denial = await world.authorize(sub_id)
    assert isinstance(denial, Denial) and denial.code == "subscription_ended"
    await assert_in_sync(world)


async def test_a_tier_changed_in_the_dashboard_is_found_and_healed(world: World) -> None:
    sub_id = await bought(world, "erin@example.com", TEAM, "team")
    await world.mint(sub_id)
    assert isinstance(await world.authorize(sub_id, "monitor_wallet"), Grant)
    world.clock.advance()
    world.life.change_price(sub_id, PERSONAL)
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {sub_id: (K.TIER,)}
    [finding] = report.findings
    assert finding.stored is not None and finding.stored.row.tier == "team"
    assert finding.snapshot is not None and finding.snapshot.tier == "personal"

    await reconcile_later(world, fix=True)

    denial = await world.authorize(sub_id, "monitor_wallet")
    assert isinstance(denial, Denial) and denial.code == "tier_required"
    await assert_in_sync(world)


async def test_a_store_restored_from_an_older_copy_is_brought_up_to_date(world: World, tmp_path: Path) -> None:
    ending = await bought(world, "fay@example.com", TEAM, "team")
    upgraded = await bought(world, "gus@example.com", PERSONAL, "personal")
    backup = tmp_path / "backup.db"
    assert world.db_path is not None
    with sqlite3.connect(world.db_path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    world.clock.advance()
    world.life.cancel(ending)
    world.life.change_price(upgraded, ENTERPRISE)
    later = world.life.buy("hal@example.com", TEAM, tier="team")
    assert set(await world.deliver_new()) == {200}  # all delivered; then the disk dies
    with sqlite3.connect(backup) as copy, sqlite3.connect(world.db_path) as live:
        copy.backup(live)

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {
        ending: (K.ENDED_IN_STRIPE, K.STATUS),
        upgraded: (K.TIER,),
        later["id"]: (K.MISSING_HERE, K.ENTITLED_IN_STRIPE),
    }
    assert report.missed == []  # Stripe delivered them all: only a read can find this

    await reconcile_later(world, fix=True)

    assert (await world.row(ending)).row.status == "canceled"
    assert (await world.row(upgraded)).row.tier == "enterprise"
    assert await world.welcome_mails(later["id"]) == 1  # the restored store lost the first mail's claim
    await assert_in_sync(world)


async def test_a_changed_customer_email_is_found_and_healed(world: World) -> None:
    sub_id = await bought(world, "ida@example.com", PERSONAL, "personal")
    customer = world.life.subscription(sub_id)["customer"]
    world.clock.advance()
    world.life.change_email(customer, "Ida.New@Example.com")
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {sub_id: (K.EMAIL,)}
    await reconcile_later(world, fix=True)
    assert (await world.row(sub_id)).email == "ida.new@example.com"
    await assert_in_sync(world)


async def test_a_subscription_stripe_does_not_know_ends_here(world: World) -> None:
    sub_id = await bought(world, "jon@example.com", TEAM, "team")
    await world.mint(sub_id)
    with world.fake._lock:
        del world.fake.state.subscriptions[sub_id]  # e.g. made with a test key, checked with a live one

    report = await reconcile_later(world, fix=False)

    [finding] = report.findings
    assert (finding.kinds, finding.stripe_object) == ((K.UNKNOWN_TO_STRIPE,), None)
    assert finding.stored is not None and finding.stored.row.status == "active"
    await reconcile_later(world, fix=True)

    denial = await world.authorize(sub_id)
    assert isinstance(denial, Denial) and denial.code == "subscription_ended"
    await assert_in_sync(world)


async def test_status_cancel_at_period_end_and_period_end_drift_are_each_found_and_healed(world: World) -> None:
    late = await bought(world, "kim@example.com", PERSONAL, "personal")
    leaving = await bought(world, "lee@example.com", TEAM, "team")
    renewed = await bought(world, "max@example.com", ENTERPRISE, "enterprise")
    unpaid = await bought(world, "ned@example.com", PERSONAL, "personal")
    world.clock.advance()
    world.life.set_status(late, "past_due")
    world.life.set_cancel_at_period_end(leaving, True)
    world.life.renew(renewed)
    world.life.set_status(unpaid, "unpaid")
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {
        late: (K.STATUS,),
        leaving: (K.CANCEL_AT_PERIOD_END,),
        renewed: (K.PERIOD_END,),
        unpaid: (K.ENDED_IN_STRIPE, K.STATUS),
    }
    healed = await reconcile_later(world, fix=True)
    assert healed.result == "healed"
    assert (await world.row(late)).row.status == "past_due"
    assert (await world.row(leaving)).row.cancel_at_period_end is True
    await assert_in_sync(world)


async def test_an_entitled_subscription_whose_customer_never_got_a_claim_is_sent_one_once(world: World) -> None:
    sub = world.life.buy("ola@example.com", PERSONAL, tier="personal")
    customer_created, subscription_created, checkout = world.new_events()
    await world.deliver([customer_created, subscription_created])
    world.life.mark_delivery(checkout["id"], True)  # Stripe believes it delivered; we never saw it

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {sub["id"]: (K.NOT_DELIVERED,)}
    await reconcile_later(world, fix=True)
    assert await world.welcome_mails(sub["id"]) == 1

    assert await world.deliver([checkout]) == [200]  # it turns up after all: no second mail
    assert await world.welcome_mails(sub["id"]) == 1
    await assert_in_sync(world)


async def test_a_subscription_moved_to_a_price_we_do_not_sell_is_left_to_an_operator(world: World) -> None:
    sub_id = await bought(world, "pat@example.com", TEAM, None)
    world.clock.advance()
    world.life.change_price(sub_id, FOREIGN)
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=True)

    assert kinds_of(report) == {sub_id: (K.UNKNOWN_PRICE,)}
    assert [(r.status, "STRIPE_PRICE_MCP_" in r.message) for r in report.healed] == [("needs_operator", True)]
    assert report.result == "partly_healed"
    assert (await world.row(sub_id)).row.tier == "team"
    again = await reconcile_later(world, fix=False)
    assert again.drift == 1


async def test_pages_are_followed_per_price_and_nothing_is_read_one_by_one_when_all_was_listed(world: World) -> None:
    for n in range(150):
        world.life.buy(f"p{n}@example.com", PERSONAL, tier="personal")
    for n in range(100):
        world.life.buy(f"t{n}@example.com", TEAM, tier="team")
    world.lose_new(stripe_knows=False)
    world.fake.requests.clear()

    report = await reconcile_later(world, fix=True)

    assert (report.drift, report.healed_count, report.stats.stripe_subscriptions) == (250, 250, 250)
    listed = [(r.path, r.params.get("price"), r.params.get("starting_after") is not None)
              for r in world.fake.requests]
    assert listed == [("/v1/events", None, False),  # one request per page of each configured price
                      ("/v1/subscriptions", TEAM, False),
                      ("/v1/subscriptions", PERSONAL, False), ("/v1/subscriptions", PERSONAL, True),
                      ("/v1/subscriptions", ENTERPRISE, False)]
    assert report.stripe_calls == 5
    world.fake.requests.clear()
    await assert_in_sync(world)
    assert len(world.fake.requests) == 5  # and nothing read one by one: every stored row was listed


async def test_a_subscription_paid_again_whose_webhook_was_lost_is_entitled_again(world: World) -> None:
    sub_id = await bought(world, "quinn@example.com", TEAM, "team")
    await world.mint(sub_id)
    world.clock.advance()
    world.life.set_status(sub_id, "unpaid")  # the card kept failing
    assert await world.deliver_new() == [200]
    assert isinstance(await world.authorize(sub_id), Denial)
    world.clock.advance()
    world.life.set_status(sub_id, "active")  # then the invoice was paid; that webhook never came
    world.lose_new(stripe_knows=False)

    report = await reconcile_later(world, fix=False)

    assert kinds_of(report) == {sub_id: (K.ENTITLED_IN_STRIPE, K.STATUS)}
    [finding] = report.findings
    assert finding.stored is not None and finding.stored.row.status == "unpaid"
    assert isinstance(await world.authorize(sub_id), Denial)  # a report changes nothing

    healed = await reconcile_later(world, fix=True)

    assert healed.healed_by_kind() == {"entitled_in_stripe": 1, "status": 1}
    assert isinstance(await world.authorize(sub_id, "monitor_wallet"), Grant)  # the same token works again
    assert await world.welcome_mails(sub_id) == 1  # the customer already had a way in: no second mail
    await assert_in_sync(world)


async def test_missed_events_are_read_for_our_types_over_the_last_30_days_and_applied_once(world: World) -> None:
    old = world.life.buy("old@example.com", TEAM, tier="team")
    lost_long_ago = world.lose_new(stripe_knows=True)  # Stripe gave up on these long ago
    with world.fake._lock:
        for event in lost_long_ago:
            world.fake.state.events[event["id"]]["created"] -= 31 * 86_400
    recent = world.life.buy("new@example.com", PERSONAL, tier="personal")
    recent_events = world.lose_new(stripe_knows=True)
    world.fake.requests.clear()

    report = await reconcile_later(world, fix=True)

    assert sorted(m.event_id for m in report.missed) == sorted(e["id"] for e in recent_events)
    assert {o.status for o in report.recovered} == {"processed"}
    [listed] = world.fake.requests_to("GET", "/v1/events")
    assert listed.params["types"] == list(world.registry.event_types)
    assert listed.params["delivery_success"] is False
    assert listed.params["created"] == {"gte": int(world.clock()) - 30 * 86_400}
    assert old["id"] in kinds_of(report)  # beyond the events' window, the read finds it all the same
    assert (await world.row(old["id"])).row.status == "active"
    assert (await world.row(recent["id"])).row.status == "active"

    again = await reconcile_later(world, fix=True)  # Stripe still lists them as undelivered

    assert (again.drift, again.missed, again.recovered) == (0, [], [])
    sources = world.rows("SELECT source, attempts, status FROM stripe_events")
    assert sources == [("recovery", 1, "processed")] * len(recent_events)


async def test_a_run_that_stripe_rate_limits_midway_waits_as_told_and_finishes_at_a_steady_pace(world: World) -> None:
    for n in range(3):
        world.life.buy(f"r{n}@example.com", PERSONAL, tier="personal")
    world.lose_new(stripe_knows=False)
    world.clock.advance(2)
    time = VirtualTime()
    pacer = Pacer(monotonic=time.monotonic, sleep=time.sleep)
    reconciler = Reconciler(world.runtime.store, world.gateway, world.runtime.settings.billing, clock=world.clock,
                            pacer=pacer)
    world.fake.fail_next(429, headers={"Retry-After": "3"}, after=2)  # the events and the first price's page pass
    world.fake.requests.clear()

    report = await reconciler.run(fix=True)

    assert (report.result, report.healed_count, report.rate_limited) == ("healed", 3, 1)
    assert report.stripe_calls == len(world.fake.requests) == 5  # every request paced, the refused one sent again
    assert time.sleeps == pytest.approx([0.05, 0.05, 3.0, 0.05])  # 20 a second; Retry-After held every request
