"""The SQLite store: the one shared truth of the billing authority (only store modules hold SQL).

Four connections, each with its own thread:
- `_write` (aiosqlite): billing state, `synchronous=FULL`, one `BEGIN IMMEDIATE` transaction at a time;
- `_batch` (`BatchWriter`): billing state too, for webhook transactions (a group-committed batch of
  events, a reconciliation's heals): the COMMIT (its fsync) in its thread, BEGIN (when the write
  lock is free) and the dozens of short statements on the event loop's thread (see
  sqlite_batch.py); it shares `_write`'s lock, so the process runs one write transaction at a time;
- `_usage` (`SQLiteThread`): call counters, `synchronous=NORMAL` (losing the last increments to a
  power cut is harmless, an fsync per tool call is not); each trip admits and counts a batch of
  calls and reads back the states it needs (see call_counter.py); a lone call's trip runs on the
  event loop's thread, never waiting for a lock or a disk there;
- `_read` (aiosqlite): point reads outside any transaction.
WAL lets readers run while a writer commits, and other processes on the same file see every
commit, so a revocation or a quota count is shared by every process on the file. Every statement
runs through `SqliteConnection`, so SQLite's errors leave the store as `StoreError`.

The file, its WAL and SHM are 0600 in a 0700 directory (`private_files`), and `secure_delete`
zeroes what a write frees, so a cleared value does not linger in free space.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from billing.errors import StoreError
from billing.quota import Windows
from billing.store import migrations
from billing.store.billing_sql import BillingSQL, WebhookTransaction
from billing.store.call_counter import USAGE_PRAGMAS, CallCounter
from billing.store.connection import Connection
from billing.store.core_sql import CoreSQL
from billing.store.customers_sql import CustomersSQL
from billing.store.delivery_sql import DeliverySQL
from billing.store.jobs_sql import JobsSQL
from billing.store.meter_sql import MeterSQL
from billing.store.oauth_grant_sql import OAuthGrantSQL
from billing.store.oauth_sql import OAuthSQL
from billing.store.outbox_sql import OutboxSQL
from billing.store.private_files import private_database_file
from billing.store.reconcile_sql import ReconcileSQL
from billing.store.records import Admission
from billing.store.sqlite_batch import BatchWriter
from billing.store.sqlite_connection import FAILURES, SqliteConnection, switch_to_wal
from billing.store.sqlite_thread import SQLiteThread
from billing.store.upgrade_sql import UpgradeSQL
from billing.tiers import DEFAULT_TIERS, TierTable

BUSY_TIMEOUT_MS = 10_000
BILLING_PRAGMAS = (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
                   "PRAGMA secure_delete = ON")

class SQLiteStore(CoreSQL, BillingSQL, CustomersSQL, DeliverySQL, OutboxSQL, UpgradeSQL, MeterSQL,
                  ReconcileSQL, JobsSQL, OAuthSQL, OAuthGrantSQL):
    """Named async operations over one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path, write: aiosqlite.Connection, usage: SQLiteThread,
                 read: aiosqlite.Connection, batch: BatchWriter, tiers: TierTable = DEFAULT_TIERS) -> None:
        self.path = path
        self._write = SqliteConnection(write)
        self._read = SqliteConnection(read)
        self._usage = usage
        self._batch = batch
        self._connections = (self._read, self._write)
        self._calls = CallCounter(usage, tiers, busy_timeout_ms=BUSY_TIMEOUT_MS)
        self._write_lock = asyncio.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, *, tiers: TierTable = DEFAULT_TIERS) -> SQLiteStore:
        """Open (creating if needed) the database at `path` and apply pending migrations; calls are
        admitted against `tiers`.

        Raises:
            StoreError: the file cannot be opened or migrated.
        """
        path = Path(path)
        private_database_file(path)
        opened: list[aiosqlite.Connection] = []
        try:
            for synchronous in ("FULL", "NORMAL"):
                opened.append(await _connect(path, synchronous=synchronous))
            # The write connection switched the file to WAL (a persistent mode) above.
            usage = await SQLiteThread.open(path, [*USAGE_PRAGMAS, "PRAGMA synchronous = NORMAL",
                                                   "PRAGMA foreign_keys = ON"], name="kamiyo-usage")
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        try:
            batch = await BatchWriter.open(path, list(BILLING_PRAGMAS), busy_timeout_ms=BUSY_TIMEOUT_MS)
        except BaseException:
            await usage.close()
            for conn in opened:
                await conn.close()
            raise
        write, read = opened
        store = cls(path, write, usage, read, batch, tiers)
        try:
            if await migrations.apply(store.transaction, store.dialect, now=int(time.time())):
                # A migration may have cleared stored values: leave none of their old pages in the WAL.
                await store._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._batch.close()
        await self._usage.close()
        for conn in self._connections:
            await conn.close()

    async def ping(self) -> bool:
        """True when the database answers.

        Raises:
            StoreError: it does not.
        """
        rows = await self._read.execute_fetchall("SELECT 1")
        return list(rows) == [(1,)]

    async def schema_version(self) -> int:
        rows = await self._read.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(list(rows)[0][0])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One write transaction (`BEGIN IMMEDIATE`): all of it is committed, or none of it.

        Raises:
            StoreError: SQLite refused the transaction or one of its statements.
        """
        async with self._write_lock:
            await self._write.execute("BEGIN IMMEDIATE")
            try:
                yield self._write
            except BaseException:
                # A failed ROLLBACK (the connection is gone) must not hide why the transaction ended.
                with contextlib.suppress(StoreError):
                    await self._write.execute("ROLLBACK")
                raise
            try:
                await self._write.execute("COMMIT")
            except BaseException:
                # A refused COMMIT can leave the transaction open; the one write connection must not
                # stay inside it, or every later BEGIN fails.
                with contextlib.suppress(StoreError):
                    await self._write.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def webhook_transaction(self, now: int) -> AsyncIterator[WebhookTransaction]:
        """One write transaction for a batch of events: everything in it commits together, or nothing
        does; one trip to the database's thread (the COMMIT) whatever the number of statements.

        Raises:
            StoreError: SQLite refused the transaction, one of its statements or the commit.
        """
        async with self._write_lock, self._batch.transaction() as db:
            yield WebhookTransaction(db, now)

    # ---- the per-call path -----------------------------------------------------------------

    async def admit_call(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "",
                         with_state: bool = True) -> Admission:
        """Admit and count one tool call (or not), and read its token's state (for a refusal always, else
        `with_state`), in one trip; a metered call's meter event (identifier `call_id`) is written in the
        same transaction."""
        return await self._calls.admit(token_hash, now=now, min_rank=min_rank, call_id=call_id,
                                       with_state=with_state)

    async def refund_call(self, subscription_id: str, counted_in: Windows, *, metered_call: str | None = None,
                          now: int = 0) -> None:
        """Give back one counted call that never reached its tool (while its windows are current); a
        metered one is not billed either (its meter event voided in the same transaction)."""
        if metered_call is not None:
            await self.refund_metered_call(subscription_id, counted_in, metered_call, now=now)
            return
        await self._calls.refund(subscription_id, counted_in)

async def _connect(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except FAILURES as exc:
        raise StoreError(f"cannot open the SQLite database at {path}: {exc}") from None
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await switch_to_wal(conn.execute)
        await conn.execute(f"PRAGMA synchronous = {synchronous}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA secure_delete = ON")
    except FAILURES as exc:
        await conn.close()
        raise StoreError(f"cannot use the SQLite database at {path}: {exc}") from None
    return conn


