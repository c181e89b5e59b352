"""One aiosqlite connection of the incident store: SQLite's errors leave it as ``IntelStoreError``.

Callers of the store (tools, the refresh loop, ``ingest``, /healthz) catch the intel error tree
and never see, or import, the driver. SQLite's messages name tables and columns, never parameter
values, so the message is kept; the driver's exception is the error's cause, for the log.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiosqlite

from .errors import IntelStoreError

BUSY_TIMEOUT_MS = 5000
STOP_WAIT_S = 5.0
# aiosqlite answers a call on a closed connection with ValueError ("Connection closed").
_DRIVER_ERRORS = (sqlite3.Error, ValueError)


@contextmanager
def driver_errors() -> Iterator[None]:
    """Re-raise the driver's errors (and a file that cannot be opened) as ``IntelStoreError``."""
    try:
        yield
    except (*_DRIVER_ERRORS, OSError) as exc:
        raise IntelStoreError(f"the incident store failed: {type(exc).__name__}: {exc}") from exc


class IntelConnection:
    """The statements the store runs on one autocommit connection (``BEGIN``/``COMMIT`` are the store's)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self._raw = raw

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> IntelConnection:
        """A connection to the file at ``path``, waiting up to ``BUSY_TIMEOUT_MS`` for a lock.

        Raises:
            IntelStoreError: the file cannot be opened.
        """
        raw = aiosqlite.connect(os.fspath(path), isolation_level=None)
        try:
            with driver_errors():
                await raw
        except IntelStoreError:
            await _worker_stopped(raw)
            raise
        connection = cls(raw)
        try:
            await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA foreign_keys = ON")
            # Incident data can be reloaded from its sources, and page sets are disposable: a commit
            # need not wait for the disk (a billing connection keeps FULL, even on a shared file).
            await connection.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await connection.close()
            raise
        return connection

    @property
    def total_changes(self) -> int:
        """Rows changed through this connection since it opened."""
        return self._raw.total_changes

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement.

        Raises:
            IntelStoreError: SQLite refused or failed it.
        """
        with driver_errors():
            await self._raw.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row.

        Raises:
            IntelStoreError: SQLite refused or failed it.
        """
        with driver_errors():
            await self._raw.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return all its rows (one trip to the connection's thread).

        Raises:
            IntelStoreError: SQLite refused or failed it.
        """
        with driver_errors():
            return [tuple(r) for r in await self._raw.execute_fetchall(sql, params)]

    async def close(self) -> None:
        """Close; closing a connection that is already closed or broken is not an error."""
        try:
            await self._raw.close()
        except _DRIVER_ERRORS:
            pass


async def _worker_stopped(raw: aiosqlite.Connection) -> None:
    """Wait for a connection that failed to open to stop its worker thread.

    aiosqlite stops it without waiting; its last act is to call back into this event loop, which
    must still be running then (a short-lived loop, like ``ingest``'s, may close right after).
    """
    worker = getattr(raw, "_thread", None)  # aiosqlite's worker thread; not part of its public API
    if isinstance(worker, threading.Thread) and worker.is_alive():
        await asyncio.to_thread(worker.join, STOP_WAIT_S)
