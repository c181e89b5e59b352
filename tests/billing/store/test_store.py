"""The store's contract, on both backends: migrations, tokens, quotas, and one truth across stores.

Every test runs once on SQLite and once on PostgreSQL (the `store` / `store_url` fixtures).
"""

from __future__ import annotations

import asyncio

import pytest

from billing.access import Denial, Grant
from billing.authority import Authority
from billing.errors import NotFoundError
from billing.quota import windows
from billing.store import AnyStore, open_store
from billing.store.migrations import load
from billing.store.records import AuditEntry, CallCount, NewToken
from billing.tiers import TIERS
from billing.tokens import TokenCodec, token_hash
from tests.support import JWT_SECRET

T0 = 1_899_999_970  # 30 s into a minute: every call below lands in one window
MINUTE = T0 - T0 % 60


def authority(store: AnyStore, now: int = T0) -> Authority:
    return Authority(store, TokenCodec(JWT_SECRET), public_url="http://x.test", clock=lambda: now)


async def counted_call(store: AnyStore, digest: str, *, now: int, min_rank: int) -> CallCount | None:
    """The counts of one call through the store's per-call trip, or None when it was not admitted."""
    return (await store.admit_call(digest, now=now, min_rank=min_rank)).counted


async def versions(store: AnyStore) -> list[int]:
    rows = await store._read.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [int(row[0]) for row in rows]


# ---- migrations ---------------------------------------------------------------------------------

async def test_opening_twice_applies_each_migration_once(store_url: str) -> None:
    first = await open_store(store_url)
    version = await first.schema_version()
    await first.close()
    second = await open_store(store_url)
    try:
        shipped = [m.version for m in load(second.dialect)]  # numbers are reserved per line of work: gaps
        assert await second.schema_version() == version == shipped[-1]
        assert await versions(second) == shipped
    finally:
        await second.close()


async def test_stores_starting_at_once_migrate_without_conflict(store_url: str) -> None:
    stores = await asyncio.gather(*(open_store(store_url) for _ in range(4)))
    try:
        shipped = [m.version for m in load(stores[0].dialect)]
        assert {await s.schema_version() for s in stores} == {shipped[-1]}
        assert await versions(stores[0]) == shipped
    finally:
        for store in stores:
            await store.close()


async def test_the_store_answers_its_health_check(store: AnyStore) -> None:
    assert await store.ping() is True


# ---- transactions -------------------------------------------------------------------------------

async def test_a_failed_transaction_writes_nothing(store: AnyStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO customers (user_id, email, created_at, updated_at) VALUES (?, ?, ?, ?)",
                ("usr_x", "x@example.com", T0, T0))
            raise RuntimeError("abandon")
    assert await store.find_user_id("x@example.com") is None


# ---- tokens and grants --------------------------------------------------------------------------

async def test_a_grant_creates_a_customer_an_entitlement_and_a_live_token(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("Ada@Example.com", "team")
    state = await store.token_state(token_hash(issued.token))
    assert state is not None
    assert (state.email, state.tier, state.status, state.kind) == ("ada@example.com", "team", "active", "grant")
    assert state.cancel_at_period_end is False and state.revoked_at is None
    assert (state.minute_count, state.day_count) == (0, 0)
    assert await store.find_user_id("ada@example.com") == issued.user_id
    assert [row.token_id for row in await store.list_tokens("ada@example.com")] == [issued.token_id]
    assert await store.get_token("tok_missing") is None


async def test_a_second_grant_for_an_email_reuses_its_customer(store: AnyStore) -> None:
    first = await authority(store).issue_grant("bob@example.com", "personal")
    second = await authority(store).issue_grant("bob@example.com", "team")
    assert first.user_id == second.user_id and first.subscription_id != second.subscription_id
    assert len(await store.list_tokens()) == 2


async def test_revoking_twice_reports_the_second_as_already_revoked(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("r@example.com", "personal")
    audit = AuditEntry("operator", "token.revoke", issued.token_id)
    assert await store.revoke_token(issued.token_id, "lost", now=T0, audit=audit) is True
    assert await store.revoke_token(issued.token_id, "lost", now=T0, audit=audit) is False
    with pytest.raises(NotFoundError):
        await store.revoke_token("tok_missing", "lost", now=T0, audit=audit)
    row = await store.get_token(issued.token_id)
    assert row is not None and (row.revoked_at, row.revoked_reason) == (T0, "lost")


async def test_rotation_replaces_a_live_token_once(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("rot@example.com", "personal")
    new = NewToken("tok_new", issued.user_id, issued.subscription_id, "h" * 64, T0, T0 + 86_400)
    audit = AuditEntry("customer", "token.rotate", issued.token_id)
    await store.rotate_token(issued.token_id, new, now=T0, audit=audit)
    old = await store.get_token(issued.token_id)
    assert old is not None and old.revoked_reason == "rotated"
    with pytest.raises(NotFoundError):
        await store.rotate_token(issued.token_id, NewToken("tok_other", issued.user_id, issued.subscription_id,
                                                           "i" * 64, T0, T0 + 1), now=T0, audit=audit)
    assert (await store.token_state("h" * 64)) is not None


async def test_a_tier_change_is_in_force_for_the_next_call(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("up@example.com", "personal")
    digest = token_hash(issued.token)
    monitor_rank = int(TIERS["team"].rank)
    assert await counted_call(store, digest, now=T0, min_rank=monitor_rank) is None
    await store.set_subscription_tier(issued.subscription_id, "team", now=T0,
                                      audit=AuditEntry("operator", "tier.set", issued.subscription_id))
    counted = await counted_call(store, digest, now=T0, min_rank=monitor_rank)
    assert counted is not None and (counted.tier, counted.minute_limit) == ("team", TIERS["team"].calls_per_minute)
    with pytest.raises(NotFoundError):
        await store.set_subscription_tier("grant_missing", "team", now=T0, audit=AuditEntry("o", "a", None))


async def test_audit_entries_come_back_in_the_order_written(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("aud@example.com", "personal")
    await store.revoke_token(issued.token_id, "x", now=T0 + 1, audit=AuditEntry("op", "token.revoke",
                                                                                 issued.token_id, "why"))
    entries = await store.audit_entries(issued.token_id)
    assert [e["action"] for e in entries][-1] == "token.revoke"
    assert entries[-1] == {"at": T0 + 1, "actor": "op", "action": "token.revoke", "subject": issued.token_id,
                           "detail": "why"}
    assert len(await store.audit_entries()) >= 2


# ---- the per-call path --------------------------------------------------------------------------

async def test_calls_are_counted_until_the_minute_window_is_full(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("q@example.com", "personal")
    digest = token_hash(issued.token)
    counts = [await counted_call(store, digest, now=T0, min_rank=0) for _ in range(31)]
    admitted = [c for c in counts if c is not None]
    assert [c.minute_count for c in admitted] == list(range(1, 31)) and counts[-1] is None
    assert (admitted[-1].minute_limit, admitted[-1].day_count, admitted[-1].day_limit) == (30, 30, 1000)
    state = await store.token_state(digest)
    assert state is not None and (state.minute_start, state.minute_count, state.day_count) == (MINUTE, 30, 30)


async def test_a_new_minute_opens_a_new_window_and_the_day_keeps_counting(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("w@example.com", "personal")
    digest = token_hash(issued.token)
    for _ in range(30):
        await counted_call(store, digest, now=T0, min_rank=0)
    counted = await counted_call(store, digest, now=T0 + 60, min_rank=0)
    assert counted is not None and (counted.minute_count, counted.day_count) == (1, 31)


async def test_the_day_window_refuses_once_full(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("d@example.com", "personal")
    digest = token_hash(issued.token)
    day_start = T0 - T0 % 86_400
    admitted = 0
    for minute in range(34):  # 34 minutes x 30 calls > 1000
        for _ in range(30):
            admitted += await counted_call(store, digest, now=day_start + 60 * minute, min_rank=0) is not None
    assert admitted == TIERS["personal"].calls_per_day
    counted = await counted_call(store, digest, now=day_start + 86_400, min_rank=0)
    assert counted is not None and counted.day_count == 1


async def test_revoked_expired_unknown_and_too_low_tier_calls_are_not_admitted(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("n@example.com", "personal")
    digest = token_hash(issued.token)
    assert await counted_call(store, "0" * 64, now=T0, min_rank=0) is None
    assert await counted_call(store, digest, now=T0, min_rank=int(TIERS["team"].rank)) is None
    assert await counted_call(store, digest, now=issued.expires_at, min_rank=0) is None
    await store.revoke_token(issued.token_id, "x", now=T0, audit=AuditEntry("o", "a", None))
    assert await counted_call(store, digest, now=T0, min_rank=0) is None
    state = await store.token_state(digest)
    assert state is not None and state.minute_count == 0


async def test_the_trip_that_counts_a_call_reads_its_tokens_state(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("st@example.com", "team")
    digest = token_hash(issued.token)
    admitted = await store.admit_call(digest, now=T0, min_rank=0)
    assert admitted.counted is not None and admitted.counted.minute_count == 1
    assert admitted.state is not None and (admitted.state.email, admitted.state.tier) == ("st@example.com", "team")
    refused = await store.admit_call(digest, now=T0, min_rank=int(TIERS["enterprise"].rank))
    assert refused.counted is None and refused.state is not None and refused.state.token_id == issued.token_id
    unknown = await store.admit_call("0" * 64, now=T0, min_rank=0)
    assert unknown.counted is None and unknown.state is None


async def test_a_refunded_call_no_longer_counts_in_its_windows(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("rf@example.com", "personal")
    digest = token_hash(issued.token)
    for _ in range(30):
        await counted_call(store, digest, now=T0, min_rank=0)
    assert await counted_call(store, digest, now=T0, min_rank=0) is None
    await store.refund_call(issued.subscription_id, windows(T0))
    last = await counted_call(store, digest, now=T0, min_rank=0)
    assert last is not None and (last.minute_count, last.day_count) == (30, 30)
    # A refund for a window that has passed leaves the new window alone.
    await counted_call(store, digest, now=T0 + 60, min_rank=0)
    await store.refund_call(issued.subscription_id, windows(T0))
    state = await store.token_state(digest)
    assert state is not None and (state.minute_count, state.day_count) == (1, 30)


# Both per-call paths: the account view's (the trip reads the token's state too) and every other
# tool's (the trip is the admit-and-count statement alone; the state is read only for a refusal).
PATHS = pytest.mark.parametrize("tool, with_account", [("get_account_status", True),
                                                        ("search_crypto_exploits", False)])


@PATHS
async def test_concurrent_calls_through_two_stores_share_the_minute_quota_exactly(store_url: str, tool: str,
                                                                                  with_account: bool) -> None:
    a, b = await open_store(store_url), await open_store(store_url)
    try:
        issued = await authority(a).issue_grant("a@example.com", "personal")
        decisions = await asyncio.gather(*(
            authority(a if i % 2 else b).authorize(issued.token, tool, with_account=with_account) for i in range(45)
        ))
        assert sum(isinstance(d, Grant) for d in decisions) == 30
        assert sorted(d.minute_used for d in decisions if isinstance(d, Grant)) == list(range(1, 31))
    finally:
        await a.close()
        await b.close()


@PATHS
async def test_a_revocation_through_one_store_refuses_the_next_call_through_another(store_url: str, tool: str,
                                                                                    with_account: bool) -> None:
    a, b = await open_store(store_url), await open_store(store_url)
    try:
        issued = await authority(a).issue_grant("rev@example.com", "team")
        assert isinstance(await authority(b).authorize(issued.token, tool, with_account=with_account), Grant)
        await authority(a).revoke(issued.token_id, reason="abuse")
        refused = await authority(b).authorize(issued.token, tool, with_account=with_account)
        assert isinstance(refused, Denial) and refused.code == "token_revoked" and "abuse" in refused.message
    finally:
        await a.close()
        await b.close()


async def test_no_table_holds_a_plaintext_token(store: AnyStore) -> None:
    issued = await authority(store).issue_grant("p@example.com", "team")
    await authority(store).authorize(issued.token, "get_account_status")
    signature = issued.token.split(".")[2]
    for table in ("customers", "subscriptions", "tokens", "usage", "audit_log", "claims", "stripe_events",
                  "outbox"):
        for row in await store._read.execute_fetchall(f"SELECT * FROM {table}"):
            text = repr(tuple(row))
            assert issued.token not in text and signature not in text
