"""The incident store's connection, transactions and data generation (SQL; base of ``store.IntelStore``).

The data generation is a counter in ``intel_meta`` that every write of incident data bumps, in the
same transaction. Caches built from the data (protocol index, chain names) are keyed by it, so
they survive writes that are not incident data (search page sets, or billing tables when an
operator puts both in one file) and are rebuilt once after an ingest or refresh, in whichever
process made it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import IntelStoreError
from .store_connection import IntelConnection


@dataclass(frozen=True, slots=True)
class DataStamp:
    """Which data a read sees: its generation, and when the sources were last loaded or confirmed."""

    generation: int
    data_as_of: str | None


class StoreBase:
    """Two connections to one file: ``_db`` reads, ``_w`` writes (SQLite's errors leave as ``IntelStoreError``).

    Writes take ``_transaction`` (``BEGIN IMMEDIATE`` on ``_w``), one at a time. Reads never share
    the writer's connection, so a tool call served while an ingest or refresh is under way sees the
    last committed data (WAL), never a half-applied batch or a search index being rebuilt.
    """

    def __init__(self, reader: IntelConnection, writer: IntelConnection) -> None:
        self._db = reader
        self._w = writer
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self._write_lock:
            await self._w.execute("BEGIN IMMEDIATE")
            try:
                yield
                await self._w.execute("COMMIT")  # a refused COMMIT leaves the transaction open: roll it back too
            except BaseException:
                with contextlib.suppress(IntelStoreError):  # the first failure is the one to report
                    await self._w.execute("ROLLBACK")
                raise

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # One trip to the connection's thread for the statement and all its rows.
        return await self._db.fetchall(sql, params)

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._rows(sql, params)
        return rows[0][0] if rows else None

    async def _written(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows read through the writer (inside a write transaction: sees its own changes)."""
        return await self._w.fetchall(sql, params)

    async def stamp(self) -> DataStamp:
        """The data generation and ``data_as_of``, in one read."""
        rows = dict(await self._rows("SELECT key, value FROM intel_meta WHERE key IN ('generation', 'data_as_of')"))
        return DataStamp(int(rows.get("generation", 0)), rows.get("data_as_of"))

    async def _bump_generation(self) -> None:
        """Inside a write transaction: the incident data changed."""
        await self._w.execute(
            "INSERT INTO intel_meta (key, value) VALUES ('generation', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    async def set_data_as_of(self, moment: str) -> None:
        """Record that the sources were loaded or confirmed unchanged at ``moment`` (ISO 8601)."""
        async with self._transaction():
            await self._w.execute(
                "INSERT INTO intel_meta (key, value) VALUES ('data_as_of', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (moment,),
            )
