"""Metered overage inside the one admit-and-count statement, on both backends: past the daily quota a
subscription with overage on keeps working, each extra call writes its meter event in the same
trip, the spend cap and the per-minute limit stay hard, and refunds and failed calls are not billed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from billing.quota import windows
from billing.store import AnyStore, open_store
from billing.store.meter_sql import write_overage
from billing.store.records import AuditEntry, CallCount, NewToken
from billing.subscription_state import SubscriptionState
from billing.tier_file import apply_overrides
from billing.tiers import TierTable

T0 = 1_899_999_970  # 30 s into a minute
PERIOD_END = T0 + 10 * 86_400
SUB = "sub_overage_admission"
HASH = "a" * 64
# Team: 3 calls a day, 5 a minute, $2 per 1,000 overage calls ($0.002 each): a $0.01 cap pays for 5.
TABLE = apply_overrides({"team": {"calls_per_day": 3, "calls_per_minute": 10}})
TEAM_RANK = 2


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    opened = await open_store(store_url, tiers=TABLE)
    try:
        yield opened
    finally:
        await opened.close()


async def subscriber(store: AnyStore, *, tier: str = "team", overage: bool = True, cap_cents: int | None = 1,
                     period_end: int = PERIOD_END) -> None:
    async with store.webhook_transaction(T0) as tx:
        user_id = await tx.ensure_stripe_customer("cus_overage", email="team@example.com", name=None,
                                                  event_created=1)
        await tx.write_subscription(SUB, user_id, SubscriptionState(tier, "active", period_end, False, T0))
        await write_overage(tx.db, SUB, item_id="si_metered" if overage else None, cap_cents=cap_cents, now=T0)
    if await store.token_state(HASH) is None:
        await store.insert_token(NewToken("tok_overage", user_id, SUB, HASH, T0, T0 + 86_400 * 365), now=T0,
                                 audit=AuditEntry("test", "token.issue", "tok_overage"))


async def call(store: AnyStore, n: int, *, now: int = T0, rank: int = 0) -> CallCount | None:
    return (await store.admit_call(HASH, now=now, min_rank=rank, call_id=f"call_{n:03d}")).counted


async def test_past_the_daily_quota_each_call_is_metered_until_the_cap_is_reached(store: AnyStore) -> None:
    await subscriber(store)
    within = [await call(store, n) for n in range(3)]
    assert all(c is not None and not c.metered for c in within)
    over = [await call(store, n) for n in range(3, 8)]
    assert all(c is not None and c.metered for c in over)
    assert [c.overage_count for c in over if c] == [1, 2, 3, 4, 5]
    assert {c.overage_limit for c in over if c} == {5} and {c.overage_period for c in over if c} == {PERIOD_END}
    assert await call(store, 8) is None  # the cap: $0.01 = 5 calls
    assert sorted(e for e, _, _ in await store.meter_events_of(SUB)) == [f"call_{n:03d}" for n in range(3, 8)]
    state = await store.token_state(HASH)
    assert state is not None and (state.day_count, state.overage_count) == (8, 5)
    assert (await store.overage_usage(SUB, PERIOD_END)).billable == 5


async def test_without_the_overage_item_or_on_a_tier_without_overage_the_day_stays_hard(store: AnyStore) -> None:
    await subscriber(store, overage=False)
    assert [await call(store, n) is not None for n in range(4)] == [True, True, True, False]
    await subscriber(store, tier="personal")  # personal has no overage in the tier table
    assert await call(store, 9, now=T0 + 86_400) is not None  # a new day
    assert await store.meter_events_of(SUB) == []


async def test_the_per_minute_limit_stays_hard_in_overage(store: AnyStore) -> None:
    await subscriber(store, cap_cents=None)  # the tier's default cap: $200
    admitted = [await call(store, n) for n in range(12)]
    assert sum(1 for c in admitted if c is not None) == 10
    assert sum(1 for c in admitted if c is not None and c.metered) == 7


async def test_a_new_billing_period_starts_the_overage_count_again(store: AnyStore) -> None:
    await subscriber(store)
    for n in range(8):
        await call(store, n)
    assert await call(store, 8) is None
    await subscriber(store, period_end=PERIOD_END + 30 * 86_400)  # Stripe renewed the period
    renewed = await call(store, 9)
    assert renewed is not None and renewed.metered and renewed.overage_count == 1


async def test_a_refunded_metered_call_is_neither_counted_nor_billed(store: AnyStore) -> None:
    await subscriber(store)
    for n in range(4):
        counted = await call(store, n)
    assert counted is not None and counted.metered
    await store.refund_call(SUB, windows(T0), metered_call="call_003", now=T0)
    state = await store.token_state(HASH)
    assert state is not None and (state.day_count, state.overage_count) == (3, 0)
    assert await store.meter_events_of(SUB) == [("call_003", T0, "voided")]


async def test_a_metered_call_that_failed_in_its_tool_stays_counted_but_gives_back_its_cap(store: AnyStore) -> None:
    await subscriber(store)
    for n in range(8):
        await call(store, n)
    assert await call(store, 8) is None
    assert await store.void_meter_event("call_005", now=T0) == "voided"
    state = await store.token_state(HASH)
    assert state is not None and (state.day_count, state.overage_count) == (8, 4)
    assert await call(store, 9) is not None  # one overage call paid for again
    assert (await store.overage_usage(SUB, PERIOD_END)).billable == 5


async def test_concurrent_overage_calls_through_two_stores_stop_exactly_at_the_cap(store_url: str) -> None:
    import asyncio

    stores = [await open_store(store_url, tiers=TABLE) for _ in range(2)]
    try:
        await subscriber(stores[0])
        results = await asyncio.gather(*(call(stores[n % 2], n) for n in range(20)))
        assert sum(1 for c in results if c is not None) == 8
        assert len(await stores[0].meter_events_of(SUB)) == 5
    finally:
        for opened in stores:
            await opened.close()


def test_the_tiers_file_drives_the_statement() -> None:
    from billing.store.call_sql import admit_and_count_sql

    sql = admit_and_count_sql("(SELECT 1)", TABLE)
    assert "WHEN 'team' THEN 3" in sql and "WHEN 'team' THEN 10" in sql
    assert "WHEN 'personal' THEN (CASE" not in sql  # no overage arm for a tier without overage
    assert isinstance(TABLE, TierTable)


async def test_on_sqlite_a_metered_call_commits_on_the_usage_thread_with_a_full_sync(tmp_path: object) -> None:
    import threading
    from pathlib import Path

    from billing.store import SQLiteStore

    store = await SQLiteStore.open(Path(str(tmp_path)) / "kamiyo.db", tiers=TABLE)
    try:
        await subscriber(store)

        async def thread_mode() -> int:  # 1 NORMAL, 2 FULL: the usage thread's connection after the trips
            return int(await store._usage.run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]))

        for n in range(3):
            assert await call(store, n) is not None  # within the quota: no fsync
        assert await thread_mode() == 1
        commits: list[str] = []  # the thread each COMMIT ran on
        store._usage.connection.set_trace_callback(
            lambda sql: commits.append(threading.current_thread().name) if sql == "COMMIT" else None)
        metered = await call(store, 3)
        assert metered is not None and metered.metered
        assert await thread_mode() == 2  # the metered trip committed at FULL
        assert commits and threading.current_thread().name not in commits  # its fsync ran off the event loop
        assert [e for e, _, _ in await store.meter_events_of(SUB)] == ["call_003"]
    finally:
        await store.close()


async def test_on_sqlite_a_metered_batch_whose_commit_cannot_be_queued_fails_with_nothing_billed(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from billing.errors import StoreError
    from billing.store import SQLiteStore

    store = await SQLiteStore.open(Path(str(tmp_path)) / "kamiyo.db", tiers=TABLE)
    try:
        await subscriber(store)
        for n in range(3):
            assert await call(store, n) is not None
        real_submit = store._usage.submit

        def closing(fn):  # type: ignore[no-untyped-def]
            raise StoreError("the SQLite connection is closed")

        monkeypatch.setattr(store._usage, "submit", closing)
        with pytest.raises(StoreError):  # the caller learns why; it does not hang
            await call(store, 3)
        monkeypatch.setattr(store._usage, "submit", real_submit)
        assert not store._usage.connection.in_transaction  # rolled back: the connection stays usable
        assert await store.meter_events_of(SUB) == []  # nothing billed
        again = await call(store, 4)
        assert again is not None and again.metered and again.day_count == 4  # the refused call was not counted
    finally:
        await store.close()
