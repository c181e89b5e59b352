import asyncio
import sqlite3
from pathlib import Path

import pytest

from billing.access import Grant
from billing.authority import Authority
from billing.errors import ConfigurationError
from billing.store import SQLiteStore, sqlite_path
from billing.store.migrations import load, split_statements
from billing.tokens import TokenCodec
from tests.support import JWT_SECRET

T0 = 1_899_999_970  # 30 s into a minute: every call below lands in one window


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_opening_twice_applies_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    first = await SQLiteStore.open(path)
    version = await first.schema_version()
    await first.close()
    second = await SQLiteStore.open(path)
    assert await second.schema_version() == version == len(load("sqlite"))
    await second.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, version + 1))


async def test_two_stores_starting_at_once_migrate_without_conflict(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    stores = await asyncio.gather(*(SQLiteStore.open(path) for _ in range(4)))
    assert {await s.schema_version() for s in stores} == {len(load("sqlite"))}
    for store in stores:
        await store.close()


async def test_the_database_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    store = await SQLiteStore.open(path)
    assert pragma(path, "journal_mode") == "wal"
    await store.close()


async def test_two_stores_on_one_file_share_the_minute_quota_exactly(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    a, b = await SQLiteStore.open(path), await SQLiteStore.open(path)
    codec = TokenCodec(JWT_SECRET)
    authority_a = Authority(a, codec, public_url="http://x.test", clock=lambda: T0)
    authority_b = Authority(b, codec, public_url="http://x.test", clock=lambda: T0)
    issued = await authority_a.issue_grant("a@example.com", "personal")
    decisions = await asyncio.gather(*(
        (authority_a if i % 2 else authority_b).authorize(issued.token, "get_account_status") for i in range(45)
    ))
    assert sum(isinstance(d, Grant) for d in decisions) == 30
    await a.close()
    await b.close()


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
