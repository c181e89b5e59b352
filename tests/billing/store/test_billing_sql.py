"""The store's Stripe lifecycle operations (webhook events, customers, subscriptions, claims), on both backends."""

from __future__ import annotations

import asyncio
import json

import pytest

from billing.claims import claim_hash
from billing.store import AnyStore, open_store
from billing.store.billing_sql import DONE_STATUSES
from billing.subscription_state import SubscriptionState

NOW = 1_900_000_000
SUB = "sub_store_1"


def active(created: int = NOW, tier: str = "team", status: str = "active") -> SubscriptionState:
    return SubscriptionState(tier, status, NOW + 30 * 86_400, False, created)


async def apply_checkout(store: AnyStore, event_id: str, *, email: str = "buyer@example.com") -> bool:
    """What a webhook handler does for a new subscription; False when the event was already applied."""
    async with store.webhook_transaction(NOW) as tx:
        if await tx.event_status(event_id) in DONE_STATUSES:
            return False
        user_id = await tx.ensure_stripe_customer("cus_1", email=email, name="Buyer", event_created=NOW)
        await tx.write_subscription(SUB, user_id, active())
        await tx.create_claim(SUB, kind="checkout_session", secret_hash=claim_hash("cs_test_1"), expires_at=NOW + 3600)
        await tx.mark_event(event_id=event_id, event_type="checkout.session.completed", created=NOW, livemode=False,
                            payload=json.dumps({"id": event_id}), status="processed", message="applied")
        return True


async def test_an_applied_event_is_recorded_with_its_payload(store: AnyStore) -> None:
    assert await apply_checkout(store, "evt_1") is True
    assert await store.event_status("evt_1") == "processed"
    event = await store.get_event("evt_1")
    assert event is not None and event.payload == '{"id": "evt_1"}'
    assert (event.type, event.livemode, event.attempts, event.processed_at) == (
        "checkout.session.completed", False, 1, NOW)
    assert await apply_checkout(store, "evt_1") is False


async def test_concurrent_deliveries_of_one_event_through_two_stores_apply_it_once(store_url: str) -> None:
    a, b = await open_store(store_url), await open_store(store_url)
    try:
        outcomes = await asyncio.gather(*(apply_checkout(a if i % 2 else b, "evt_race") for i in range(10)))
        assert outcomes.count(True) == 1
        assert len(await a.list_events()) == 1
        assert (await b.customer_for_email("buyer@example.com")) is not None
    finally:
        await a.close()
        await b.close()


async def test_a_failure_is_recorded_and_never_overwrites_a_processed_event(store: AnyStore) -> None:
    failure = dict(event_type="invoice.paid", created=NOW, livemode=True, payload="{}", now=NOW)
    await store.record_event_failure(event_id="evt_f", error="boom" * 1000, **failure)
    await store.record_event_failure(event_id="evt_f", error="again", **failure)
    event = await store.get_event("evt_f")
    assert event is not None and (event.status, event.attempts, event.last_error, event.livemode) == (
        "failed", 2, "again", True)
    await apply_checkout(store, "evt_ok")
    await store.record_event_failure(event_id="evt_ok", error="late", **failure)
    assert await store.event_status("evt_ok") == "processed"


async def test_events_are_listed_newest_first_and_filtered(store: AnyStore) -> None:
    for i, kind in enumerate(("invoice.paid", "invoice.paid", "customer.updated")):
        await store.record_event_failure(event_id=f"evt_{i}", event_type=kind, created=NOW + i, livemode=False,
                                         payload="{}", error="x", now=NOW)
    assert [e.event_id for e in await store.list_events()] == ["evt_2", "evt_1", "evt_0"]
    assert [e.event_id for e in await store.list_events(event_type="invoice.paid", limit=1)] == ["evt_1"]
    assert await store.list_events(status="processed") == []
    assert (await store.list_events())[0].payload is None


async def test_a_savepoint_undoes_only_its_own_writes(store: AnyStore) -> None:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_sp", email="sp@example.com", name=None, event_created=NOW)
        with pytest.raises(ValueError):
            async with tx.savepoint():
                await tx.write_subscription(SUB, user_id, active())
                raise ValueError("handler failed")
        assert await tx.subscription(SUB) is None
    assert await store.customer_for_email("sp@example.com") is not None


async def test_a_stripe_customer_links_to_a_user_only_when_named_and_an_older_event_keeps_the_newer_email(
    store: AnyStore,
) -> None:
    async with store.webhook_transaction(NOW) as tx:
        operator = await tx.ensure_stripe_customer(None, email="old@example.com", name=None, event_created=NOW)
        stranger = await tx.ensure_stripe_customer("cus_x", email="old@example.com", name="X", event_created=NOW)
        assert stranger != operator  # the same email alone never joins two accounts
        linked = await tx.ensure_stripe_customer("cus_l", email="old@example.com", name="L", event_created=NOW,
                                                 link_user_id=operator)
        assert linked == operator
        assert await tx.ensure_stripe_customer("cus_l", email="new@example.com", name=None,
                                               event_created=NOW + 5) == operator
        assert await tx.ensure_stripe_customer("cus_l", email="stale@example.com", name=None,
                                               event_created=NOW + 1) == operator  # older: the email stays
        with pytest.raises(ValueError):
            await tx.ensure_stripe_customer(None, email=None, name=None, event_created=NOW)
    known = await store.customer_for_email("new@example.com")
    assert known is not None and known.stripe_customer_id == "cus_l"
    assert await store.customer_for_email("stale@example.com") is None


async def test_a_subscription_is_written_updated_and_its_payment_state_ordered(store: AnyStore) -> None:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_s", email="s@example.com", name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, active())
        await tx.write_subscription(SUB, user_id, SubscriptionState("enterprise", "past_due", NOW + 99, True,
                                                                    NOW + 1))
        assert await tx.set_payment_state(SUB, "failed", event_created=NOW + 3)
        assert not await tx.set_payment_state(SUB, "paid", event_created=NOW + 2)
        row = await tx.subscription(SUB)
    assert row is not None
    assert (row.tier, row.status, row.current_period_end, row.cancel_at_period_end, row.payment_state,
            row.last_event_created, row.payment_event_created) == (
        "enterprise", "past_due", NOW + 99, True, "failed", NOW + 1, NOW + 3)


async def test_ending_a_subscription_revokes_its_tokens_and_expires_its_claims(store: AnyStore) -> None:
    await apply_checkout(store, "evt_end")
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at, expires_at)"
            " SELECT 'tok_end', user_id, subscription_id, ?, ?, ? FROM subscriptions WHERE subscription_id = ?",
            ("e" * 64, NOW, NOW + 86_400, SUB))
    async with store.webhook_transaction(NOW + 10) as tx:
        assert await tx.create_claim(SUB, kind="checkout_session", secret_hash=claim_hash("cs_test_1"),
                                     expires_at=NOW) is False
        assert await tx.revoke_subscription_tokens(SUB, "subscription deleted") == 1
        assert await tx.revoke_subscription_tokens(SUB, "subscription deleted") == 0
        assert await tx.expire_claims(SUB) == 1
        await tx.audit("stripe", "subscription.deleted", SUB)
    token = await store.get_token("tok_end")
    assert token is not None and token.revoked_reason == "subscription deleted"
    assert (await store.audit_entries(SUB))[-1]["action"] == "subscription.deleted"


async def test_entitled_subscriptions_are_counted_by_kind_and_tier(store: AnyStore) -> None:
    await apply_checkout(store, "evt_count")
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_2", email="two@example.com", name=None, event_created=NOW)
        await tx.write_subscription("sub_ended", user_id, SubscriptionState("team", "active", NOW - 1, True, NOW))
        await tx.write_subscription("sub_gone", user_id, active(status="canceled"))
    assert await store.active_subscriptions_by_tier(NOW) == {("stripe", "team"): 1}
