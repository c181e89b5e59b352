"""One aiosqlite connection of the incident store: SQLite's errors leave it as ``IntelStoreError``.

Callers of the store (tools, the refresh loop, ``ingest``, /healthz) catch the intel error tree
and never see, or import, the driver. SQLite's messages name tables and columns, never parameter
values, so the message is kept; the driver's exception is the error's cause, for the log.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiosqlite

from .errors import IntelStoreError

BUSY_TIMEOUT_MS = 5000
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
        with driver_errors():
            raw = await aiosqlite.connect(os.fspath(path), isolation_level=None)
        connection = cls(raw)
        try:
            await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA foreign_keys = ON")
            # Incident data can be reloaded from its sources, and page sets are disposable: a commit
            # need not wait for the disk (the billing connection on the same file keeps FULL).
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
