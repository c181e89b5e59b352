"""Admitting and counting tool calls on PostgreSQL: one statement per call on a pooled connection.

The statement is `billing.store.call_sql`'s, fed one call's parameters. PostgreSQL's
`ON CONFLICT DO UPDATE` cannot touch one row twice in a statement, so calls are not batched; each
is a single autocommit statement (one round trip with asyncpg's cached prepared statement). The
upsert locks the subscription's usage row and re-checks the window against its latest committed
version, so counts are exact across every process and host on the database.
"""

from __future__ import annotations

import asyncpg

from billing.store.call_sql import admit_and_count_sql, window_starts
from billing.store.pg_connection import numbered, store_errors
from billing.store.records import CallCount

_CALL = ("(SELECT CAST(0 AS BIGINT) AS id, CAST(? AS TEXT) AS hash, CAST(? AS BIGINT) AS now,"
         " CAST(? AS BIGINT) AS minute, CAST(? AS BIGINT) AS day, CAST(? AS BIGINT) AS min_rank)")


class PgCallCounter:
    """`consume` runs the admit-and-count statement for one call on a connection from `pool`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._sql = numbered(admit_and_count_sql(_CALL))

    async def consume(self, token_hash: str, *, now: int, min_rank: int) -> CallCount | None:
        minute, day = window_starts(now)
        with store_errors():
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(self._sql, token_hash, now, minute, day, min_rank)
        return None if row is None else CallCount(*tuple(row)[1:])
