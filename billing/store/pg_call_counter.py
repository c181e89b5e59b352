"""Admitting and counting tool calls on PostgreSQL: one statement per call on a pooled connection.

The admit-and-count upsert of `billing.store.call_sql` runs as a data-modifying CTE, a second CTE
writes the meter event of a metered call (past the daily quota, with overage on), and the outer
SELECT reads the token's state, so a call is decided, counted, billed and described in one round trip
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
    COUNTED_COLUMNS,
    METER_SETTLE_SECONDS,
    REFUND_SQL,
    STATE_WIDTH,
    TOKEN_STATE_COLUMNS,
    TOKEN_STATE_FROM,
    admit_and_count_sql,
    call_count,
    token_state,
)
from billing.store.pg_connection import numbered, store_errors
from billing.store.records import Admission, new_call_id
from billing.tiers import DEFAULT_TIERS, TierTable

_CALL = ("(SELECT CAST(0 AS BIGINT) AS id, CAST(? AS TEXT) AS hash, CAST(? AS BIGINT) AS now,"
         " CAST(? AS BIGINT) AS minute, CAST(? AS BIGINT) AS day, CAST(? AS BIGINT) AS min_rank)")



def admit_sql(tiers: TierTable = DEFAULT_TIERS) -> str:
    """One call: admitted and counted, its meter event written when metered, the token's state read.

    Parameters: the call (hash, now, minute, day, min_rank), its meter event (identifier, time, due
    time), and the token hash again for the state read.
    """
    counted = ", ".join("counted." + column.strip() for column in COUNTED_COLUMNS.split(","))
    return f"""
WITH counted AS ({admit_and_count_sql(_CALL, tiers)}),
billed AS (
  INSERT INTO meter_events (identifier, subscription_id, occurred_at, period_end, next_attempt_at)
  SELECT CAST(? AS TEXT), counted.subscription_id, CAST(? AS BIGINT), counted.overage_period, CAST(? AS BIGINT)
  FROM counted WHERE counted.last_metered = 1
)
SELECT {TOKEN_STATE_COLUMNS}, {counted}
{TOKEN_STATE_FROM}
LEFT JOIN counted ON TRUE
WHERE t.token_hash = CAST(? AS TEXT)
"""


class PgCallCounter:
    """`admit` runs the admit-and-count statement for one call on a connection from `pool`."""

    def __init__(self, pool: asyncpg.Pool, tiers: TierTable = DEFAULT_TIERS) -> None:
        self._pool = pool
        self._admit = numbered(admit_sql(tiers))
        self._refund = numbered(REFUND_SQL)

    async def admit(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "") -> Admission:
        """Admit and count one call (`call_id` names its meter event if it is metered)."""
        current = windows(now)
        with store_errors():
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(self._admit, token_hash, now, current.minute, current.day, min_rank,
                                          call_id or new_call_id(), now, now + METER_SETTLE_SECONDS, token_hash)
        if row is None:
            return Admission(None, None)
        values = tuple(row)
        counted = values[STATE_WIDTH:]
        return Admission(None if counted[0] is None else call_count(counted), token_state(values))

    async def refund(self, subscription_id: str, counted_in: Windows) -> None:
        with store_errors():
            async with self._pool.acquire() as conn:
                await conn.execute(self._refund, counted_in.minute, counted_in.day, subscription_id)
