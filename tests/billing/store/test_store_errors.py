"""A failing database reaches callers as StoreError on both backends, never as its driver's exception."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from billing.errors import StoreError
from billing.store import AnyStore, is_postgres_url
from billing.store.records import AuditEntry, NewToken

NOW = 1_900_000_000


async def drop_tokens_table(store_url: str) -> None:
    """What a broken or half-migrated database looks like: another client removed a table."""
    if is_postgres_url(store_url):
        conn = await asyncpg.connect(store_url)
        try:
            await conn.execute("DROP TABLE tokens CASCADE")
        finally:
            await conn.close()
    else:
        with sqlite3.connect(store_url) as conn:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("DROP TABLE tokens")


def new_token(n: int) -> NewToken:
    return NewToken(f"tok_{n}", f"usr_{n}", f"grant_{n}", f"{n:064x}", NOW, NOW + 86_400)


async def test_reads_writes_and_call_counting_on_a_broken_database_raise_store_error(
    store: AnyStore, store_url: str
) -> None:
    await store.create_grant("before@example.com", "team", new_token(1), now=NOW,
                             audit=AuditEntry("test", "grant.create", "grant_1"))
    await drop_tokens_table(store_url)

    with pytest.raises(StoreError):
        await store.list_tokens()
    with pytest.raises(StoreError):
        await store.token_state("0" * 64)
    with pytest.raises(StoreError):
        await store.admit_call(f"{1:064x}", now=NOW + 1, min_rank=0)
    with pytest.raises(StoreError):
        await store.create_grant("after@example.com", "team", new_token(2), now=NOW,
                                 audit=AuditEntry("test", "grant.create", "grant_2"))
    with pytest.raises(StoreError):
        async with store.webhook_transaction(NOW) as tx:
            await tx.revoke_subscription_tokens("grant_1", "test")

    # The failed transactions were rolled back: the store still writes what does not need the table.
    async with store.transaction() as db:
        await db.execute("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
                         (NOW, "test", "still.writable", None, None))
    assert [e["action"] for e in await store.audit_entries()][-1] == "still.writable"


async def test_a_closed_store_answers_store_error(store: AnyStore) -> None:
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.list_tokens()
