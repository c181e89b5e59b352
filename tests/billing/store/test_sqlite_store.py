"""What only the SQLite store has: a file, WAL, its URLs (the shared contract is in test_store.py)."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from billing.access import Denial, Grant
from billing.authority import Authority
from billing.errors import ConfigurationError, StoreError
from billing.store import SQLiteStore, sqlite_path
from billing.store.call_counter import CHECKPOINT_EVERY, MAX_HERE
from billing.store.migrations import split_statements
from billing.tokens import Credential, TokenCodec
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


@asynccontextmanager
async def authority_on(path: Path) -> AsyncIterator[tuple[SQLiteStore, Authority]]:
    """A SQLite store at `path` and an authority over it, closed after the block."""
    store = await SQLiteStore.open(path)
    try:
        yield store, Authority(store, TokenCodec(JWT_SECRET), public_url="http://x.test")
    finally:
        await store.close()


async def credential(authority: Authority, email: str, tier: str) -> Credential:
    return authority.verify((await authority.issue_grant(email, tier)).token)


async def test_a_lone_call_is_decided_on_the_loop_and_a_crowd_in_batches_on_the_usage_thread(tmp_path: Path) -> None:
    async with authority_on(tmp_path / "k.db") as (store, authority):
        lone = await credential(authority, "lone@example.com", "enterprise")
        usage = store._usage
        jobs = 0
        run = usage.run

        async def counted_run(fn):  # type: ignore[no-untyped-def]
            nonlocal jobs
            jobs += 1
            return await run(fn)

        usage.run = counted_run  # type: ignore[method-assign]
        for expected in (1, 2, 3):  # one after the other: each alone
            decision = await authority.admit(lone, "get_account_status")
            assert isinstance(decision, Grant) and decision.minute_used == expected
        assert jobs == 0
        crowd = await asyncio.gather(*(authority.admit(lone, "get_account_status") for _ in range(MAX_HERE + 16)))
        assert jobs >= 1  # a turn's batch larger than MAX_HERE goes to the thread
        used = sorted(d.minute_used for d in crowd if isinstance(d, Grant))
        assert used == list(range(4, 4 + MAX_HERE + 16))  # every call counted exactly once


async def test_calls_that_arrive_over_consecutive_turns_of_the_loop_are_decided_in_one_commit(tmp_path: Path) -> None:
    async with authority_on(tmp_path / "k.db") as (store, authority):
        creds = [await credential(authority, f"s{i}@example.com", "enterprise") for i in range(6)]
        statements: list[str] = []
        store._usage.connection.set_trace_callback(statements.append)

        async def arriving(turns: int, cred: Credential) -> Grant | Denial:
            for _ in range(turns):  # a request the loop is still reading
                await asyncio.sleep(0)
            return await authority.admit(cred, "get_account_status")

        decisions = await asyncio.gather(*(arriving(i // 2, c) for i, c in enumerate(creds)))
        assert all(isinstance(d, Grant) and d.minute_used == 1 for d in decisions)
        assert statements.count("COMMIT") == 1  # two calls per turn over three turns: one trip
        statements.clear()
        assert isinstance(await authority.admit(creds[0], "get_account_status"), Grant)
        assert statements.count("COMMIT") == 1  # a lone call: its own trip


async def test_the_account_view_reuses_a_state_read_until_another_connection_commits(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    async with authority_on(path) as (store, authority):
        cred = await credential(authority, "view@example.com", "team")
        statements: list[str] = []
        store._usage.connection.set_trace_callback(statements.append)

        def state_reads() -> int:
            return sum("json_each(:hashes)" in sql or "IN (SELECT value FROM json_each('[" in sql for sql in statements)

        first = await authority.admit(cred, "get_account_status", with_account=True)
        second = await authority.admit(cred, "get_account_status", with_account=True)
        assert isinstance(first, Grant) and isinstance(second, Grant)
        assert state_reads() == 1  # the second call's view came from the first one's read
        assert second.state == await store.token_state(cred.token_hash)  # with the counters it just wrote
        assert (second.state.minute_count, second.state.day_count) == (2, 2) and second.minute_used == 2
        with sqlite3.connect(path) as other:  # another connection commits: the next view reads again
            other.execute("UPDATE customers SET email = 'renamed@example.com'")
        third = await authority.admit(cred, "get_account_status", with_account=True)
        assert isinstance(third, Grant) and third.state is not None and third.state.email == "renamed@example.com"
        assert state_reads() == 2


async def test_the_usage_connection_checkpoints_the_wal_on_its_thread_so_it_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    async with authority_on(path) as (_, authority):
        credentials = [await credential(authority, f"c{i}@example.com", "enterprise") for i in range(50)]
        assert pragma(path, "wal_autocheckpoint") == 1000  # other connections keep SQLite's default
        for i in range(4 * CHECKPOINT_EVERY):  # lone calls, each its own commit on the usage connection
            assert isinstance(await authority.admit(credentials[i % 50], "search_crypto_exploits"), Grant)
        await asyncio.sleep(0.2)  # the last checkpoint job finishes
        with sqlite3.connect(path) as conn:  # a passive checkpoint reports the frames the WAL holds now
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        # Each commit adds at least one frame: without checkpoints the WAL would hold all of them; with
        # one every CHECKPOINT_EVERY commits it restarts from its beginning after each.
        assert 0 <= frames < 2 * CHECKPOINT_EVERY


async def test_a_trip_that_fails_on_the_loop_fails_its_calls_with_a_store_error_and_none_hangs(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    async with authority_on(path) as (_, authority):
        failing = await credential(authority, "fail@example.com", "team")
        with sqlite3.connect(path) as other:  # the statement can no longer run
            other.execute("ALTER TABLE usage RENAME TO usage_gone")
        with anyio.fail_after(10):
            outcomes = await asyncio.gather(*(authority.admit(failing, "get_account_status") for _ in range(3)),
                                            return_exceptions=True)
        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        assert "usage" in str(outcomes[0])  # SQLite's reason, wrapped
