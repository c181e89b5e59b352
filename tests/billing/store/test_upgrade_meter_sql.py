"""Upgrade links and the meter-event outbox in the store, on both backends."""

from __future__ import annotations

from billing.claims import claim_hash
from billing.store import AnyStore
from billing.store.meter_sql import MeterOutcomes, write_overage
from billing.store.upgrade_sql import (
    OVERAGE_REASON,
    complete_bought_upgrade_link,
    complete_overage_links,
    complete_upgrade_links,
)
from billing.subscription_state import SubscriptionState

NOW = 1_900_000_000
SUB = "sub_upgrade_store"
PERIOD_END = NOW + 20 * 86_400


async def subscribed(store: AnyStore, tier: str = "personal") -> str:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_u", email="buyer@example.com", name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, SubscriptionState(tier, "active", PERIOD_END, False, NOW))
    return user_id


async def metered(store: AnyStore, *identifiers: str, at: int = NOW) -> None:
    """Meter-event rows as the admit-and-count statement writes them."""
    async with store.transaction() as db:
        for identifier in identifiers:
            await db.execute("INSERT INTO meter_events (identifier, subscription_id, occurred_at, period_end,"
                             " next_attempt_at) VALUES (?, ?, ?, ?, ?)", (identifier, SUB, at, PERIOD_END, at))


async def test_an_upgrade_link_is_stored_hashed_and_works_once(store: AnyStore) -> None:
    await subscribed(store)
    link_id = await store.create_upgrade_link(subscription_id=SUB, target_tier="team", reason="tier_required",
                                              code_hash=claim_hash("code-1"), now=NOW, expires_at=NOW + 1800)
    shown = await store.upgrade_link(claim_hash("code-1"))
    assert shown is not None and (shown.link_id, shown.target_tier, shown.tier, shown.email) == (
        link_id, "team", "personal", "buyer@example.com")
    assert shown.stripe_customer_id == "cus_u" and shown.used_at is None
    used = await store.use_upgrade_link(claim_hash("code-1"), now=NOW + 5)
    assert used is not None and used.used_at == NOW + 5
    assert await store.use_upgrade_link(claim_hash("code-1"), now=NOW + 6) is None
    await store.release_upgrade_link(link_id)
    assert await store.use_upgrade_link(claim_hash("code-1"), now=NOW + 7) is not None
    assert await store.upgrade_link(claim_hash("nope")) is None


async def test_an_expired_upgrade_link_cannot_be_used(store: AnyStore) -> None:
    await subscribed(store)
    await store.create_upgrade_link(subscription_id=SUB, target_tier="team", reason="tier_required",
                                    code_hash=claim_hash("late"), now=NOW, expires_at=NOW + 1800)
    assert await store.use_upgrade_link(claim_hash("late"), now=NOW + 1800) is None


async def test_a_webhook_at_the_target_tier_completes_the_subscriptions_open_links(store: AnyStore) -> None:
    await subscribed(store)
    to_team = await store.create_upgrade_link(subscription_id=SUB, target_tier="team", reason="tier_required",
                                              code_hash=claim_hash("a"), now=NOW, expires_at=NOW + 1800)
    to_enterprise = await store.create_upgrade_link(subscription_id=SUB, target_tier="enterprise", reason="quota",
                                                    code_hash=claim_hash("b"), now=NOW, expires_at=NOW + 1800)
    async with store.webhook_transaction(NOW + 60) as tx:
        done = await complete_upgrade_links(tx.db, SUB, ["personal", "team"], now=tx.now)
    assert done == [to_team]
    assert await store.completed_upgrade_links([to_team, to_enterprise, "upl_x"]) == {to_team}
    assert await store.use_upgrade_link(claim_hash("a"), now=NOW + 61) is None


async def test_an_overage_link_is_completed_by_the_overage_item_never_by_the_tier(store: AnyStore) -> None:
    await subscribed(store, "team")
    overage = await store.create_upgrade_link(subscription_id=SUB, target_tier="team", reason=OVERAGE_REASON,
                                              code_hash=claim_hash("o"), now=NOW, expires_at=NOW + 1800)
    assert await store.subscription_for_offer(SUB) == ("stripe", "team", "active", None)
    async with store.webhook_transaction(NOW + 60) as tx:
        assert await complete_upgrade_links(tx.db, SUB, ["personal", "team"], now=tx.now) == []
        await write_overage(tx.db, SUB, item_id="si_metered", cap_cents=5000, now=tx.now)
        assert await complete_overage_links(tx.db, SUB, now=tx.now) == [overage]
    shown = await store.upgrade_link(claim_hash("o"))
    assert shown is not None and (shown.overage_item_id, shown.overage_cap_cents) == ("si_metered", 5000)
    assert await store.subscription_for_offer(SUB) == ("stripe", "team", "active", "si_metered")
    assert await store.subscription_for_offer("sub_missing") is None


async def test_a_bought_link_completes_only_for_its_own_customer_at_its_tier(store: AnyStore) -> None:
    user_id = await subscribed(store)
    link = await store.create_upgrade_link(subscription_id=SUB, target_tier="team", reason="tier_required",
                                           code_hash=claim_hash("g"), now=NOW, expires_at=NOW + 1800)
    async with store.webhook_transaction(NOW + 60) as tx:
        assert await complete_bought_upgrade_link(tx.db, link, "user_other", ["personal", "team"], now=tx.now) == []
        assert await complete_bought_upgrade_link(tx.db, link, user_id, ["personal"], now=tx.now) == []
        assert await complete_bought_upgrade_link(tx.db, link, user_id, ["personal", "team"], now=tx.now) == [link]


async def test_a_grants_bought_tiers_are_its_users_stripe_subscriptions_in_force(store: AnyStore) -> None:
    user_id = await subscribed(store, "team")  # a Stripe subscription of the user
    async with store.webhook_transaction(NOW) as tx:
        await tx.write_subscription("sub_ended", user_id, SubscriptionState("enterprise", "canceled", NOW, False, NOW))
        await tx.db.execute("INSERT INTO subscriptions (subscription_id, user_id, kind, tier, status, created_at,"
                            " updated_at) VALUES ('grant_1', ?, 'grant', 'personal', 'active', ?, ?)",
                            (user_id, NOW, NOW))
    assert await store.bought_tiers("grant_1") == ["team"]  # the canceled one does not count
    assert await store.bought_tiers(SUB) == []  # only asked of grants


async def test_the_sender_takes_due_events_under_a_lease_and_records_a_batch_at_once(store: AnyStore) -> None:
    await subscribed(store, "team")
    async with store.webhook_transaction(NOW) as tx:
        await write_overage(tx.db, SUB, item_id="si_over", cap_cents=5000, now=NOW)
    await metered(store, "call_1", "call_2", "call_3", "call_4")
    taken = await store.take_due_meter_events(NOW, lease_until=NOW + 30, limit=3)
    assert [e.identifier for e in taken] == ["call_1", "call_2", "call_3"]
    assert all(e.stripe_customer_id == "cus_u" and e.attempts == 1 and e.status == "pending" for e in taken)
    assert [e.identifier for e in await store.take_due_meter_events(NOW, lease_until=NOW + 30, limit=10)] == ["call_4"]
    assert await store.take_due_meter_events(NOW + 29, lease_until=NOW + 60, limit=10) == []
    await store.record_meter_outcomes(MeterOutcomes(
        sent=["call_1"], cancelled=[], failed=[("call_2", "bad customer")], uncancellable=[],
        retry=[("call_3", "Stripe 500", NOW + 90)]), now=NOW + 1)
    counts = await store.meter_event_counts()
    assert (counts["sent"], counts["failed"], counts["pending"]) == (1, 1, 2)
    assert await store.next_meter_event_due() == NOW + 30
    usage = await store.overage_usage(SUB, PERIOD_END)
    assert (usage.billable, usage.sent, usage.failed, usage.pending) == (4, 1, 1, 2)
    account = await store.overage_account("buyer@example.com")
    assert account is not None and (account.overage_item_id, account.overage_cap_cents) == ("si_over", 5000)


async def test_a_failed_call_is_voided_before_sending_or_cancelled_after(store: AnyStore) -> None:
    await subscribed(store, "team")
    await metered(store, "never_sent", "in_flight", "already_sent")
    assert await store.void_meter_event("never_sent", now=NOW + 1) == "voided"
    taken = await store.take_due_meter_events(NOW + 1, lease_until=NOW + 31, limit=10)
    assert {e.identifier for e in taken} == {"in_flight", "already_sent"}
    await store.record_meter_outcomes(MeterOutcomes(["already_sent"], [], [], [], []), now=NOW + 2)
    # A void while a send is in flight: the send's success marks nothing, the cancellation follows the lease.
    assert await store.void_meter_event("in_flight", now=NOW + 3) == "cancel_pending"
    await store.record_meter_outcomes(MeterOutcomes(["in_flight"], [], [], [], []), now=NOW + 4)
    assert await store.void_meter_event("already_sent", now=NOW + 5) == "cancel_pending"
    assert await store.void_meter_event("unknown", now=NOW + 5) is None
    due = await store.take_due_meter_events(NOW + 5, lease_until=NOW + 40, limit=10)
    assert [(e.identifier, e.status) for e in due] == [("already_sent", "cancel_pending")]
    due_later = await store.take_due_meter_events(NOW + 31, lease_until=NOW + 60, limit=10)
    assert [(e.identifier, e.status) for e in due_later] == [("in_flight", "cancel_pending")]
    await store.record_meter_outcomes(MeterOutcomes([], ["already_sent"], [], [("in_flight", "too late")], []),
                                      now=NOW + 32)
    counts = await store.meter_event_counts()
    assert (counts["voided"], counts["cancelled"], counts["sent"]) == (1, 1, 1)
    assert (await store.overage_usage(SUB, PERIOD_END)).billable == 1
