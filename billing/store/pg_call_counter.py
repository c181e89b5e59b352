"""Admitting and counting tool calls on PostgreSQL: one statement per call on a pooled connection.

The admit-and-count upsert of `billing.store.call_sql` runs as a data-modifying CTE whose outer
SELECT reads the token's state, so a call is decided, counted and described in one round trip
(asyncpg's cached prepared statement). PostgreSQL's `ON CONFLICT DO UPDATE` cannot touch one row
twice in a statement, so calls are not batched. The upsert locks the subscription's usage row and
re-checks the window against its latest committed version, so counts are exact across every
process and host on the database. The outer SELECT sees the statement's snapshot: the counts of an
admitted call come from the upsert's RETURNING, and a refused call's state is the one it was refused
against (the authority re-reads in the rare case a concurrent commit makes that state look admissible).
"""

from __future__ import annotations

import asyncpg

from billing.quota import Windows, windows
from billing.store.call_sql import (
    REFUND_SQL,
    STATE_WIDTH,
    TOKEN_STATE_COLUMNS,
    TOKEN_STATE_FROM,
    admit_and_count_sql,
    call_count,
    token_state,
)
from billing.store.pg_connection import numbered, store_errors
from billing.store.records import Admission

_CALL = ("(SELECT CAST(0 AS BIGINT) AS id, CAST(? AS TEXT) AS hash, CAST(? AS BIGINT) AS now,"
         " CAST(? AS BIGINT) AS minute, CAST(? AS BIGINT) AS day, CAST(? AS BIGINT) AS min_rank)")

ADMIT_SQL = f"""
WITH counted AS ({admit_and_count_sql(_CALL)})
SELECT {TOKEN_STATE_COLUMNS},
       counted.subscription_id, counted.tier, counted.minute_count, counted.minute_limit,
       counted.day_count, counted.day_limit
{TOKEN_STATE_FROM}
LEFT JOIN counted ON TRUE
WHERE t.token_hash = CAST(? AS TEXT)
"""


class PgCallCounter:
    """`admit` runs the admit-and-count statement for one call on a connection from `pool`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._admit = numbered(ADMIT_SQL)
        self._refund = numbered(REFUND_SQL)

    async def admit(self, token_hash: str, *, now: int, min_rank: int) -> Admission:
        current = windows(now)
        with store_errors():
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(self._admit, token_hash, now, current.minute, current.day, min_rank,
                                          token_hash)
        if row is None:
            return Admission(None, None)
        values = tuple(row)
        counted = values[STATE_WIDTH:]
        return Admission(None if counted[0] is None else call_count(counted), token_state(values))

    async def refund(self, subscription_id: str, counted_in: Windows) -> None:
        with store_errors():
            async with self._pool.acquire() as conn:
                await conn.execute(self._refund, counted_in.minute, counted_in.day, subscription_id)
