"""asyncpg behind the store's `Connection` surface (billing.store.connection).

Here `?` becomes `$1..$n` (outside string literals) and asyncpg's status line becomes a row count.
asyncpg's and the network's errors become `StoreError`, as SQLite's do in `SqliteConnection`:
callers above the store know nothing of either driver.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from billing.errors import StoreError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@contextmanager
def store_errors() -> Iterator[None]:
    """Re-raise asyncpg's and the network's errors as `StoreError` (the original is its cause)."""
    try:
        yield
    except FAILURES as exc:
        # The type and SQLSTATE only: asyncpg's messages can quote parameter values.
        state = getattr(exc, "sqlstate", None)
        raise StoreError(f"PostgreSQL failed: {type(exc).__name__}{f' ({state})' if state else ''}") from exc


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1..$n`, leaving quoted literals and identifiers alone."""
    out: list[str] = []
    count = 0
    quote: str | None = None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            count += 1
            out.append(f"${count}")
            continue
        out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Result:
    rowcount: int


def _rowcount(status: str) -> int:
    # "INSERT 0 1", "UPDATE 3", "DELETE 0", "SELECT 2": the count is the last word.
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class PgConnection:
    """One asyncpg connection (inside a transaction, or a pooled one for a single statement)."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with store_errors():
            return Result(_rowcount(await self._conn.execute(numbered(sql), *params)))

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        with store_errors():
            return list(await self._conn.fetch(numbered(sql), *params))


class PgPoolReader:
    """Single statements outside any transaction, each on a connection borrowed from the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with store_errors():
            async with self._pool.acquire() as conn:
                return Result(_rowcount(await conn.execute(numbered(sql), *params)))

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        with store_errors():
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(numbered(sql), *params))
