"""Write transactions whose statements run on the event loop's own thread: one trip per transaction.

A batch of webhook events (group commit) runs a dozen short statements per event. Handed one at a
time to a connection's thread, as aiosqlite does, each statement is a trip that costs far more than
its SQL: a queue, a wake-up, a callback into the loop, and on a busy loop a fight for the GIL at
every step. Here one connection is driven from both sides:

- `BEGIN IMMEDIATE` runs on the caller's thread when the file's write lock is free (the
  connection's busy timeout is 0, so it never waits there); when another connection holds the lock
  (another process, the usage thread), it runs in the connection's thread with the busy timeout
  and waits there, never on the event loop;
- the statements in between run directly on the caller's thread. Once BEGIN IMMEDIATE holds the
  write lock they never wait for a lock (in WAL mode readers do not block the writer), and each is
  microseconds of SQLite on pages in the cache;
- `COMMIT` runs in the thread: its fsync (`synchronous=FULL`) never blocks the loop; a COMMIT
  that fails is rolled back there, so the connection never stays inside a transaction;
- a failure in between is rolled back on the caller's thread (a rollback waits for no disk).

The caller serializes transactions (the store's write lock), so the thread and the caller never
use the connection at the same time: a statement runs on the caller's thread only between a
finished BEGIN job and a COMMIT job not yet queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from billing.store.connection import Row
from billing.store.sqlite_connection import FAILURES, is_busy, sqlite_errors, store_error, waiting_for_locks
from billing.store.sqlite_thread import SQLiteThread


class InlineConnection:
    """The store's `Connection` surface on a sqlite3 connection, run on the caller's thread."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # try/except rather than `with sqlite_errors()`: a context manager per statement costs half the SQL's time.
    async def execute(self, sql: str, params: Sequence[Any] = (), /) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except FAILURES as exc:
            raise store_error(exc) from exc

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = (), /) -> Sequence[Row]:
        try:
            rows: list[Row] = self._conn.execute(sql, params).fetchall()
        except FAILURES as exc:
            raise store_error(exc) from exc
        return rows


class BatchWriter:
    """One write connection (`synchronous=FULL`) whose transactions cost one trip to its thread (the COMMIT)."""

    def __init__(self, thread: SQLiteThread, busy_timeout_ms: int) -> None:
        self._thread = thread
        self._inline = InlineConnection(thread.connection)
        self._busy_timeout_ms = busy_timeout_ms
        self._unsettled = False

    @classmethod
    async def open(cls, path: Path, pragmas: list[str], *, busy_timeout_ms: int) -> BatchWriter:
        """Connect to `path` with `pragmas` in a thread of its own; a taken write lock is waited for up
        to `busy_timeout_ms`, in that thread.

        Raises:
            StoreError: the file cannot be opened or a pragma is refused.
        """
        thread = await SQLiteThread.open(path, [*pragmas, "PRAGMA busy_timeout = 0"], name="kamiyo-batch-writer")
        return cls(thread, busy_timeout_ms)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InlineConnection]:
        """One `BEGIN IMMEDIATE` transaction: all of it is committed (and on disk), or none of it.

        The caller must not start another one before this one has ended.

        Raises:
            StoreError: SQLite refused the transaction, one of its statements or the commit.
        """
        if self._unsettled:
            # A cancelled transaction's job may still run (or wait) in the thread: let it finish,
            # and end what it began, before touching the connection from this thread.
            await self._thread.run(_rollback_if_open)
            self._unsettled = False
        if not self._begin_here():
            await self._in_thread(self._begin_waiting)
        try:
            yield self._inline
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                _rollback_if_open(self._thread.connection)
            raise
        await self._in_thread(_commit)

    async def _in_thread(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        try:
            await self._thread.run(fn)
        except asyncio.CancelledError:
            self._unsettled = True  # `fn` goes on in the thread
            raise

    async def close(self) -> None:
        await self._thread.close()

    def _begin_here(self) -> bool:
        """BEGIN IMMEDIATE on the caller's thread; False (nothing begun) when the write lock is taken.

        Raises:
            StoreError: SQLite refused it for another reason.
        """
        with sqlite_errors():
            try:
                self._thread.connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    return False
                raise
        return True

    def _begin_waiting(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE in the connection's thread, waiting up to the busy timeout for the lock."""
        with waiting_for_locks(conn, self._busy_timeout_ms):
            conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        with contextlib.suppress(sqlite3.Error):
            _rollback_if_open(conn)
        raise


def _rollback_if_open(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")

