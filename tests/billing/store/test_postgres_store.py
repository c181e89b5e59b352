"""What only the PostgreSQL store has: URL selection, the cross-process write lock, its schema twins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from billing.errors import StoreError
from billing.store import PostgresStore, SQLiteStore, open_store
from billing.store.postgres import WRITE_LOCK_KEY
from tests.support import free_port


async def test_postgres_urls_of_either_scheme_open_a_postgres_store(postgres_url: str, tmp_path: Path) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = await open_store(url)
        try:
            assert isinstance(store, PostgresStore) and await store.ping()
        finally:
            await store.close()
    sqlite = await open_store(str(tmp_path / "k.db"))
    assert isinstance(sqlite, SQLiteStore)
    await sqlite.close()


async def test_an_unreachable_database_is_reported_without_its_password() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store(f"postgresql://kamiyo:sekrit-pw@127.0.0.1:{free_port()}/kamiyo")
    assert "sekrit-pw" not in str(caught.value) and "PostgreSQL" in str(caught.value)


async def test_a_store_whose_database_is_gone_fails_with_store_errors(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.token_state("0" * 64)
    with pytest.raises(StoreError):
        await store.admit_call("0" * 64, now=0, min_rank=0)
    with pytest.raises(StoreError):
        await store.record_event_failure(event_id="evt", event_type="t", created=0, livemode=False, payload="{}",
                                         error="x", now=0)


async def waiting_for_the_write_lock(store: PostgresStore) -> int:
    rows = await store._read.execute_fetchall(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND ((classid::bigint << 32) | objid::bigint) = ?", (WRITE_LOCK_KEY,))
    return int(rows[0][0])


async def test_a_write_transaction_waits_for_another_process_writer(postgres_url: str) -> None:
    a, b = await open_store(postgres_url), await open_store(postgres_url)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    entered: list[str] = []

    async def write(store: PostgresStore, name: str) -> None:
        async with store.transaction():
            entered.append(name)

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                async with a.transaction():
                    group.start_soon(write, b, "b")
                    while await waiting_for_the_write_lock(a) == 0:
                        await anyio.sleep(0.01)  # polling the server's lock table, bounded above
                    assert entered == []
                # a has committed, which lets b in; the task group waits for it.
            assert entered == ["b"]
    finally:
        await a.close()
        await b.close()


def sqlite_columns(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'intel_%'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


async def test_the_postgres_migrations_build_the_same_tables_and_columns_as_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    sqlite = await open_store(str(tmp_path / "k.db"))
    await sqlite.close()
    store = await open_store(postgres_url)
    try:
        rows = await store._read.execute_fetchall(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position")
    finally:
        await store.close()
    postgres: dict[str, list[str]] = {}
    for table, column in rows:
        postgres.setdefault(table, []).append(column)
    assert postgres == sqlite_columns(tmp_path / "k.db")
