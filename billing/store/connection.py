"""The small connection surface the store's SQL is written against, on either backend.

Store modules write portable SQL with `?` placeholders and call `execute(sql, params)` (which
reports `rowcount`) and `execute_fetchall(sql, params)`; `SqliteConnection` (aiosqlite) and
`PgConnection` (asyncpg) provide exactly that, and both turn their driver's errors into
`StoreError`, so no caller above the store ever sees (or imports) a database driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Row(Protocol):
    """One result row: its values by position (a tuple, sqlite3.Row or asyncpg.Record)."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Result(Protocol):
    """What `execute` reports: how many rows the statement changed (-1 when not known)."""

    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """A connection (or a transaction on one) the store's SQL runs on."""

    async def execute(self, sql: str, params: Sequence[Any] = (), /) -> Result:
        """Run one statement.

        Raises:
            StoreError: the database refused or failed it.
        """
        ...

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = (), /) -> Sequence[Row]:
        """Run one statement and return all its rows.

        Raises:
            StoreError: the database refused or failed it.
        """
        ...


class SQLMixin:
    """Base of the store's SQL mixins: what they need from the store class they are mixed into.

    `_read` runs single statements outside any transaction; `transaction()` is one atomic write.
    """

    _read: Connection

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError
