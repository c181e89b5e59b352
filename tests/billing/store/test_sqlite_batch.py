"""SQLite webhook transactions: statements on the loop's thread, one trip for the COMMIT, all or nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from billing.errors import StoreError
from billing.store import SQLiteStore

NOW = 1_900_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(tmp_path / "k.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def trips(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions the batch writer's thread is handed, by name."""
    thread = store._batch._thread
    handed: list[str] = []
    run = thread.run

    async def counted(fn: Callable[[sqlite3.Connection], Any]) -> Any:
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await run(fn)

    monkeypatch.setattr(thread, "run", counted)
    return handed


def audit_subjects(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT subject FROM audit_log ORDER BY id")]


async def test_a_transaction_of_many_statements_costs_one_trip_to_the_writers_thread(
        store: SQLiteStore, trips: list[str]) -> None:
    async with store.webhook_transaction(NOW) as tx:
        for n in range(50):
            await tx.audit("test", "batch.write", f"subject-{n}")
            async with tx.savepoint():
                await tx.event_status(f"evt_{n}")

    assert trips == ["_commit"]
    assert audit_subjects(store.path) == [f"subject-{n}" for n in range(50)]


async def test_a_transaction_waits_in_its_thread_for_another_writer_and_the_loop_keeps_running(
        store: SQLiteStore, trips: list[str]) -> None:
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    async def write() -> None:
        async with store.webhook_transaction(NOW) as tx:
            await tx.audit("test", "after.the.other", "waited")

    task = asyncio.create_task(write())
    with anyio.fail_after(10):
        for _ in range(20):  # the event loop keeps running while the transaction waits for the lock
            await asyncio.sleep(0)
    assert not task.done()
    other.execute("COMMIT")
    other.close()
    with anyio.fail_after(10):
        await task

    assert trips == ["_begin_waiting", "_commit"]
    assert audit_subjects(store.path) == ["waited"]


async def test_a_transaction_cancelled_while_it_waits_for_the_lock_leaves_none_open(store: SQLiteStore) -> None:
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with store.webhook_transaction(NOW) as tx:
            await tx.audit("test", "cancelled", "never")

    task = asyncio.create_task(write())
    with anyio.fail_after(10):
        for _ in range(5):
            await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    other.execute("COMMIT")
    other.close()

    with anyio.fail_after(10):  # the begun-after-cancel transaction was ended behind it
        async with store.webhook_transaction(NOW) as tx:
            await tx.audit("test", "next", "written")
    assert audit_subjects(store.path) == ["written"]


async def test_a_failure_inside_rolls_back_every_statement_and_the_next_transaction_commits(
        store: SQLiteStore) -> None:
    with pytest.raises(RuntimeError, match="handler failed"):
        async with store.webhook_transaction(NOW) as tx:
            await tx.audit("test", "undone", "first")
            await tx.audit("test", "undone", "second")
            raise RuntimeError("handler failed")

    async with store.webhook_transaction(NOW) as tx:
        await tx.audit("test", "kept", "third")
    assert audit_subjects(store.path) == ["third"]


async def test_a_refused_commit_is_rolled_back_and_answered_store_error(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        async with store.webhook_transaction(NOW) as tx:
            await tx.db.execute("PRAGMA defer_foreign_keys = ON")  # the violation surfaces at COMMIT
            await tx.audit("test", "undone", "with the orphan")
            await tx.db.execute("INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at,"
                                " expires_at) VALUES ('t', 'nobody', 'no_such_subscription', 'h', 1, 2)")

    async with store.webhook_transaction(NOW) as tx:
        await tx.audit("test", "kept", "after")
    assert audit_subjects(store.path) == ["after"]


async def test_a_statement_sqlite_refuses_inside_is_store_error_and_undoes_the_transaction(
        store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="no such table"):
        async with store.webhook_transaction(NOW) as tx:
            await tx.audit("test", "undone", "before the bad statement")
            await tx.db.execute_fetchall("SELECT * FROM no_such_table")

    assert audit_subjects(store.path) == []
