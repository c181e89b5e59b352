"""Admitting and counting tool calls: one atomic statement per batch of concurrent calls.

A call is admitted when its token is live, its subscription grants access, its tier reaches the
tool's, and neither quota window is full; admitting it counts it. All of that is one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE ... RETURNING` statement, so it is atomic across
every process on the file. Calls that arrive while a statement runs wait and go together in the
next one (a batch of one when the server is idle): one trip to the connection's thread and one
commit serve them all, which is what makes the per-call path cheap.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiosqlite

from billing.access import ENTITLED_STATUSES
from billing.store.records import CallCount
from billing.tiers import TIERS

MAX_BATCH = 256


def _case(column: str, values: dict[str, int]) -> str:
    # Built from our own tier table (fixed identifiers and ints), never from input.
    arms = " ".join(f"WHEN '{name}' THEN {int(value)}" for name, value in values.items())
    return f"CASE {column} {arms} ELSE 0 END"


def consume_sql() -> str:
    """The batched admit-and-count statement; `:batch` is a JSON array of call objects.

    A row of the SELECT exists only for an admissible call; the upsert's WHERE refuses the
    increment when a window is full. Rows are processed in request order, so calls of one
    subscription within a batch see each other's counts. A call with no RETURNING row was not
    admitted (the authority then asks the store why).
    """
    minute = _case("s.tier", {n: t.calls_per_minute for n, t in TIERS.items()})
    day = _case("s.tier", {n: t.calls_per_day for n, t in TIERS.items()})
    rank = _case("s.tier", {n: int(t.rank) for n, t in TIERS.items()})
    statuses = ", ".join(f"'{s}'" for s in sorted(ENTITLED_STATUSES))
    return f"""
INSERT INTO usage (subscription_id, tier, minute_start, minute_count, minute_limit,
                   day_start, day_count, day_limit, last_request)
SELECT s.subscription_id, s.tier, c.minute, 1, {minute}, c.day, 1, {day}, c.id
FROM (SELECT CAST(key AS INTEGER) AS id, value ->> '$.h' AS hash, value ->> '$.n' AS now,
             value ->> '$.m' AS minute, value ->> '$.d' AS day, value ->> '$.r' AS min_rank
      FROM json_each(:batch)) AS c
JOIN tokens AS t ON t.token_hash = c.hash
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
WHERE t.revoked_at IS NULL
  AND t.expires_at > c.now
  AND s.status IN ({statuses})
  AND NOT (s.cancel_at_period_end = 1 AND s.current_period_end IS NOT NULL
           AND s.current_period_end <= c.now)
  AND {rank} >= c.min_rank
ORDER BY c.id
ON CONFLICT (subscription_id) DO UPDATE SET
  tier = excluded.tier,
  minute_count = CASE WHEN usage.minute_start = excluded.minute_start
                      THEN usage.minute_count + 1 ELSE 1 END,
  minute_start = excluded.minute_start,
  minute_limit = excluded.minute_limit,
  day_count = CASE WHEN usage.day_start = excluded.day_start THEN usage.day_count + 1 ELSE 1 END,
  day_start = excluded.day_start,
  day_limit = excluded.day_limit,
  last_request = excluded.last_request
WHERE (usage.minute_start <> excluded.minute_start OR usage.minute_count < excluded.minute_limit)
  AND (usage.day_start <> excluded.day_start OR usage.day_count < excluded.day_limit)
RETURNING last_request, subscription_id, tier, minute_count, minute_limit, day_count, day_limit
"""


@dataclass(slots=True)
class _Call:
    token_hash: str
    now: int
    min_rank: int
    result: asyncio.Future[CallCount | None]


class CallCounter:
    """Batches concurrent `consume` calls into one statement on `conn` (autocommit)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._sql = consume_sql()
        self._pending: list[_Call] = []
        self._worker: asyncio.Task[None] | None = None

    async def consume(self, token_hash: str, *, now: int, min_rank: int) -> CallCount | None:
        future: asyncio.Future[CallCount | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(token_hash, now, min_rank, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                counts = await self._run(batch)
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                for call in batch:
                    if not call.result.done():
                        call.result.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for index, call in enumerate(batch):
                if not call.result.done():
                    call.result.set_result(counts.get(index))

    async def _run(self, batch: list[_Call]) -> dict[int, CallCount]:
        payload = json.dumps([
            {"h": c.token_hash, "n": c.now, "m": c.now - c.now % 60, "d": c.now - c.now % 86400, "r": c.min_rank}
            for c in batch
        ])
        rows = await self._conn.execute_fetchall(self._sql, {"batch": payload})
        return {int(row[0]): CallCount(*row[1:]) for row in rows}
