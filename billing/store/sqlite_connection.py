"""aiosqlite behind the store's `Connection` surface: SQLite's errors become `StoreError`.

SQLite's messages name tables, columns and constraints, never parameter values, so the message is
kept; the driver's exception is the `StoreError`'s cause for the log.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiosqlite

from billing.errors import StoreError
from billing.store.connection import Row

# aiosqlite answers a call on a closed connection with ValueError ("Connection closed").
FAILURES = (sqlite3.Error, ValueError)
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
WAL_ATTEMPTS = 40  # about 8 s of backoff in all


async def switch_to_wal(execute: Callable[[str], Awaitable[object]]) -> None:
    """Switch a file to WAL through `execute` (a connection's statement runner, whatever it raises).

    SQLite answers a switch made at the same time by another connection (several processes creating
    the same file) with an immediate "database is locked" that the busy timeout does not cover, so
    it is tried again with a growing pause; any other failure, or the last one, is raised.
    """
    for attempt in range(WAL_ATTEMPTS):
        try:
            await execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (primary code BUSY or LOCKED)."""
    return exc.sqlite_errorcode & 0xFF in _BUSY


@contextmanager
def waiting_for_locks(conn: sqlite3.Connection, busy_timeout_ms: int) -> Iterator[None]:
    """The connection waits up to `busy_timeout_ms` for a lock in the block (0, never, again after it):
    for connections whose statements also run on the event loop, which must never wait."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        yield
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def store_error(exc: Exception) -> StoreError:
    """SQLite's (or aiosqlite's) error `exc` as the store's (raise it `from exc`)."""
    return StoreError(f"SQLite failed: {type(exc).__name__}: {exc}")


@contextmanager
def sqlite_errors() -> Iterator[None]:
    """Re-raise SQLite's (and aiosqlite's) errors as `StoreError` (the original is its cause)."""
    try:
        yield
    except FAILURES as exc:
        raise store_error(exc) from exc


class SqliteConnection:
    """One aiosqlite connection (autocommit; `BEGIN`/`COMMIT` are the store's business)."""

    __slots__ = ("raw",)

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def execute(self, sql: str, params: Sequence[Any] = (), /) -> aiosqlite.Cursor:
        with sqlite_errors():
            return await self.raw.execute(sql, params)

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = (), /) -> Sequence[Row]:
        with sqlite_errors():
            return list(await self.raw.execute_fetchall(sql, params))

    async def close(self) -> None:
        """Close the connection; closing one that is already closed or broken is not an error."""
        try:
            await self.raw.close()
        except FAILURES:
            pass
