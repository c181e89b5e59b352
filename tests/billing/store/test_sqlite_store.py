"""What only the SQLite store has: a file, WAL, its URLs (the shared contract is in test_store.py)."""

import asyncio
import sqlite3
from pathlib import Path

import anyio
import pytest

from billing.access import Grant
from billing.authority import Authority
from billing.errors import ConfigurationError
from billing.store import SQLiteStore, sqlite_path
from billing.store.migrations import split_statements
from billing.tokens import TokenCodec
from tests.support import JWT_SECRET


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_the_database_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    store = await SQLiteStore.open(path)
    assert pragma(path, "journal_mode") == "wal"
    await store.close()


async def test_no_plaintext_token_reaches_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    store = await SQLiteStore.open(path)
    authority = Authority(store, TokenCodec(JWT_SECRET), public_url="http://x.test")
    issued = await authority.issue_grant("a@example.com", "team")
    await authority.authorize(issued.token, "get_account_status")
    await store.close()
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert issued.token.encode() not in data
        assert issued.token.split(".")[2].encode() not in data


def test_database_urls_name_a_sqlite_file_or_are_refused() -> None:
    assert sqlite_path("sqlite:///data/k.db") == Path("data/k.db")
    assert sqlite_path("sqlite:////var/lib/k.db") == Path("/var/lib/k.db")
    assert sqlite_path("/tmp/k.db") == Path("/tmp/k.db")
    for bad in ("mysql://host/db", "sqlite://host/k.db", "  "):
        with pytest.raises(ConfigurationError):
            sqlite_path(bad)


def test_migration_scripts_split_into_whole_statements() -> None:
    script = "-- note\nCREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;\n"
    statements = split_statements(script)
    assert len(statements) == 2 and statements[1].endswith("END;")


async def test_a_call_waits_for_another_writer_instead_of_failing_or_blocking_the_loop(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "k.db")
    try:
        authority = Authority(store, TokenCodec(JWT_SECRET), public_url="http://x.test")
        issued = await authority.issue_grant("busy@example.com", "team")
        other = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        call = asyncio.create_task(authority.authorize(issued.token, "get_account_status"))
        ticks = 0
        with anyio.fail_after(10):
            while ticks < 20:  # the event loop keeps running while the call waits for the lock
                await asyncio.sleep(0)
                ticks += 1
        assert not call.done()
        other.execute("COMMIT")
        other.close()
        with anyio.fail_after(10):
            decision = await call
        assert isinstance(decision, Grant) and decision.minute_used == 1
    finally:
        await store.close()
