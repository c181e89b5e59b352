"""Group commit: concurrent deliveries share one transaction (one fsync); a leader waits for its wave, bounded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from billing.store.billing_sql import WebhookTransaction
from billing.webhooks.event import parse_event
from billing.webhooks.group_commit import GroupCommit
from billing.webhooks.processor import WebhookProcessor
from tests.billing.webhooks.webhook_support import SUBSCRIPTION, Webhooks, load_event, rewrite_ids


async def test_concurrent_deliveries_share_transactions_and_each_is_applied_once(
        webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    store = webhooks.runtime.store
    processor = WebhookProcessor(store, webhooks.runtime.settings.billing)
    transactions: list[int] = []
    real = store.webhook_transaction

    @asynccontextmanager
    async def counted(now: int) -> AsyncIterator[WebhookTransaction]:
        transactions.append(now)
        async with real(now) as tx:
            yield tx

    monkeypatch.setattr(store, "webhook_transaction", counted)
    bodies = [json.dumps(rewrite_ids(load_event("customer.subscription.created"), f"g{n}")) for n in range(12)]

    with anyio.fail_after(30):
        outcomes = await asyncio.gather(*(processor.process(parse_event(b), b) for b in bodies),
                                        *(processor.process(parse_event(b), b) for b in bodies[:3]))

    assert sorted(o.status for o in outcomes) == ["duplicate"] * 3 + ["processed"] * 12
    assert len(transactions) < 12
    assert webhooks.rows("SELECT COUNT(*) FROM subscriptions WHERE subscription_id LIKE ?",
                         (f"{SUBSCRIPTION}_g%",)) == [(12,)]
    assert webhooks.rows("SELECT COUNT(*) FROM audit_log") == [(12,)]


def wave(group: GroupCommit, size: int, seconds: float) -> None:
    """`size` deliveries in progress at once, committed together in `seconds`."""
    for queued in range(1, size + 1):
        group.entered(queued)
    group.committed(seconds)
    for _ in range(size):
        group.left()


async def test_a_leader_alone_after_a_wave_of_four_starts_once_the_other_three_have_queued() -> None:
    group = GroupCommit(max_batch=64, max_wait=60.0)
    wave(group, 4, seconds=60.0)
    group.entered(1)

    leader = asyncio.create_task(group.gather(1))
    for queued in (2, 3):
        await asyncio.sleep(0)
        assert not leader.done()
        group.entered(queued)
    await asyncio.sleep(0)
    assert not leader.done()
    group.entered(4)
    with anyio.fail_after(5):
        await leader


async def test_a_leader_waits_no_longer_than_its_bound_for_a_wave_that_does_not_come() -> None:
    group = GroupCommit(max_batch=64, max_wait=0.005)
    wave(group, 4, seconds=60.0)

    with anyio.fail_after(5):
        await group.gather(1)


async def test_deliveries_one_at_a_time_and_a_first_batch_never_wait() -> None:
    first = GroupCommit(max_batch=64, max_wait=60.0)
    with anyio.fail_after(5):
        await first.gather(1)  # nothing timed yet

    single = GroupCommit(max_batch=64, max_wait=60.0)
    for _ in range(3):
        wave(single, 1, seconds=60.0)
    with anyio.fail_after(5):
        await single.gather(1)


async def test_the_wave_waited_for_is_capped_by_the_largest_batch() -> None:
    group = GroupCommit(max_batch=8, max_wait=60.0)
    wave(group, 50, seconds=60.0)
    group.entered(1)

    leader = asyncio.create_task(group.gather(1))
    for queued in range(2, 9):
        await asyncio.sleep(0)
        group.entered(queued)
    with anyio.fail_after(5):
        await leader
