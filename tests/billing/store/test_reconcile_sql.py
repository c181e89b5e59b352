"""The store's side of reconciliation on both backends: stored subscriptions by page, and the job lease."""

from __future__ import annotations

import json

from billing.store import AnyStore, open_store
from billing.store.delivery_sql import reserve_email_claim
from billing.store.records import AuditEntry, NewToken
from billing.subscription_state import SubscriptionState

NOW = 1_900_000_000


async def stripe_subscription(store: AnyStore, subscription_id: str, email: str, *, created: int = NOW) -> str:
    async with store.webhook_transaction(created) as tx:
        user_id = await tx.ensure_stripe_customer(f"cus_{subscription_id}", email=email, name=None,
                                                  event_created=created)
        await tx.write_subscription(subscription_id, user_id, SubscriptionState("team", "active", NOW + 9, False,
                                                                                created))
    return user_id


async def test_stored_subscriptions_come_with_their_email_and_whether_a_way_in_was_given(store: AnyStore) -> None:
    plain = await stripe_subscription(store, "sub_plain", "plain@example.com")
    await stripe_subscription(store, "sub_mailed", "mailed@example.com")
    await stripe_subscription(store, "sub_token", "token@example.com")
    async with store.webhook_transaction(NOW) as tx:
        await reserve_email_claim(tx.db, "sub_mailed", expires_at=NOW, now=NOW)
        await tx.create_claim("sub_plain", kind="checkout_session", secret_hash="a" * 64, expires_at=NOW + 60)
    async with store.transaction() as db:
        await db.execute("INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at, expires_at)"
                         " SELECT 'tok_1', user_id, subscription_id, ?, ?, ? FROM subscriptions"
                         " WHERE subscription_id = 'sub_token'", ("t" * 64, NOW, NOW + 9))
    await store.create_grant("grant@example.com", "team", NewToken("tok_g", "usr_g", "grant_1", "g" * 64, NOW,
                                                                   NOW + 9),
                             now=NOW, audit=AuditEntry("test", "grant", None))

    found = await store.stored_subscriptions(["sub_plain", "sub_mailed", "sub_token", "grant_1", "sub_none"])

    assert sorted(found) == ["sub_mailed", "sub_plain", "sub_token"]  # operator grants are not Stripe's
    plain_row = found["sub_plain"]
    assert (plain_row.email, plain_row.stripe_customer_id, plain_row.row.user_id, plain_row.created_at) == (
        "plain@example.com", "cus_sub_plain", plain, NOW)
    assert {k: v.delivered for k, v in found.items()} == {"sub_plain": False, "sub_mailed": True, "sub_token": True}
    assert await store.stored_subscriptions([]) == {}


async def test_stored_subscriptions_are_paged_by_id_from_a_creation_time(store: AnyStore) -> None:
    for n in range(7):
        await stripe_subscription(store, f"sub_{n}", f"p{n}@example.com", created=NOW + n)

    pages, after = [], None
    while batch := await store.stored_subscription_page(after=after, limit=3):
        pages.append([s.row.subscription_id for s in batch])
        after = batch[-1].row.subscription_id

    assert pages == [["sub_0", "sub_1", "sub_2"], ["sub_3", "sub_4", "sub_5"], ["sub_6"]]
    recent = await store.stored_subscription_page(after=None, created_gte=NOW + 5)
    assert [s.row.subscription_id for s in recent] == ["sub_5", "sub_6"]


async def test_one_holder_at_a_time_takes_a_job_across_stores_and_an_expired_lease_is_taken_over(
        store_url: str) -> None:
    a, b = await open_store(store_url), await open_store(store_url)
    try:
        assert await a.start_job("reconcile", "A", now=NOW, lease_seconds=60)
        assert not await b.start_job("reconcile", "B", now=NOW + 1, lease_seconds=60)
        assert await a.renew_job("reconcile", "A", now=NOW + 50, lease_seconds=60)
        assert not await b.start_job("reconcile", "B", now=NOW + 100, lease_seconds=60)  # renewed until +110
        assert await b.start_job("reconcile", "B", now=NOW + 111, lease_seconds=60)  # A died: its lease expired
        assert not await a.renew_job("reconcile", "A", now=NOW + 112, lease_seconds=60)
        await a.finish_job("reconcile", "A", now=NOW + 113, result='{"result": "late"}')  # not A's any more
        await b.finish_job("reconcile", "B", now=NOW + 120, result=json.dumps({"result": "in_sync"}))
        state = await a.job_state("reconcile")
        assert state is not None
        assert (state.holder, state.held(NOW + 120), state.last_started_at, state.last_finished_at,
                json.loads(state.last_result or "")) == (None, False, NOW + 111, NOW + 120, {"result": "in_sync"})
        assert await a.job_state("other") is None
    finally:
        await a.close()
        await b.close()


async def test_a_job_that_started_recently_is_not_due(store: AnyStore) -> None:
    assert await store.start_job("reconcile", "A", now=NOW, lease_seconds=60, started_before=NOW)
    await store.finish_job("reconcile", "A", now=NOW + 5, result="{}")
    assert not await store.start_job("reconcile", "B", now=NOW + 10, lease_seconds=60, started_before=NOW)
    assert await store.start_job("reconcile", "B", now=NOW + 3600, lease_seconds=60, started_before=NOW + 1)
