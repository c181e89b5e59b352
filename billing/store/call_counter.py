"""Admitting and counting tool calls on SQLite: one trip per batch of concurrent calls.

A trip is one write transaction on the usage connection's own thread: the admit-and-count
statement of `billing.store.call_sql` fed the batch as JSON, the meter events of the calls it
metered (past the daily quota, with overage on), then one read of every batched token's state
(what the grant shows, or why a call was refused), committed together. It is atomic across every
process on the file. Calls that arrive while a trip runs wait and go together in the next one (a
batch of one when the server is idle), so one thread hop and one commit serve them all.

Durability: counts alone may be lost to a power cut (the connection commits with
`synchronous=NORMAL`, no fsync per call), but a meter event is billing state. A trip that meters a
call therefore commits with `synchronous=FULL`: SQLite cannot change that inside a transaction, so
the trip that finds a metered call rolls back, switches, and runs again (the re-run decides anew,
under the same lock semantics). While calls keep being metered the connection stays at FULL; the
first trip that meters nothing commits at FULL and switches back. No metered call returns (and so
no tool runs on it) before its meter event is on disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from billing.quota import Windows, windows
from billing.store.call_sql import (
    METER_EVENT_SQL,
    METER_SETTLE_SECONDS,
    REFUND_SQL,
    STATE_WIDTH,
    TOKEN_STATE_COLUMNS,
    TOKEN_STATE_FROM,
    admit_and_count_sql,
    call_count,
    token_state,
)
from billing.store.records import Admission, CallCount, TokenState, new_call_id
from billing.store.sqlite_thread import SQLiteThread
from billing.tiers import DEFAULT_TIERS, TierTable

MAX_BATCH = 256

CALLS_SOURCE = (
    "(SELECT CAST(key AS INTEGER) AS id, value ->> '$.h' AS hash, value ->> '$.n' AS now,"
    " value ->> '$.m' AS minute, value ->> '$.d' AS day, value ->> '$.r' AS min_rank"
    " FROM json_each(:batch))"
)
STATES_SQL = (f"SELECT {TOKEN_STATE_COLUMNS}, t.token_hash {TOKEN_STATE_FROM}"
              " WHERE t.token_hash IN (SELECT value FROM json_each(:hashes))")


@dataclass(slots=True)
class _Call:
    token_hash: str
    now: int
    min_rank: int
    call_id: str
    result: asyncio.Future[Admission]


@dataclass(slots=True)
class _Durability:
    """The usage connection's synchronous mode, touched only on its thread."""

    full: bool = False


class CallCounter:
    """Batches concurrent `admit` calls into one trip to the usage connection's thread."""

    def __init__(self, usage: SQLiteThread, tiers: TierTable = DEFAULT_TIERS) -> None:
        self._usage = usage
        self._consume = admit_and_count_sql(CALLS_SOURCE, tiers)
        self._durability = _Durability()
        self._pending: list[_Call] = []
        self._worker: asyncio.Task[None] | None = None

    async def admit(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "") -> Admission:
        """Admit and count one call (`call_id` names its meter event if it is metered)."""
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(token_hash, now, min_rank, call_id or new_call_id(), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def refund(self, subscription_id: str, counted_in: Windows) -> None:
        params = (counted_in.minute, counted_in.day, subscription_id)
        await self._usage.run(lambda conn: conn.execute(REFUND_SQL, params).close())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                counts, states = await self._usage.run(_trip(batch, self._consume, self._durability))
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                for call in batch:
                    if not call.result.done():
                        call.result.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for index, call in enumerate(batch):
                if not call.result.done():
                    call.result.set_result(Admission(counts.get(index), states.get(call.token_hash)))


_Trip = Callable[[sqlite3.Connection], tuple[dict[int, CallCount], dict[str, TokenState]]]


def _trip(batch: list[_Call], consume: str, durability: _Durability) -> _Trip:
    payload = json.dumps([_as_json(call) for call in batch])
    hashes = json.dumps(sorted({call.token_hash for call in batch}))

    def count(conn: sqlite3.Connection) -> dict[int, CallCount]:
        conn.execute("BEGIN IMMEDIATE")
        return {int(row[0]): call_count(row[1:]) for row in conn.execute(consume, {"batch": payload}).fetchall()}

    def trip(conn: sqlite3.Connection) -> tuple[dict[int, CallCount], dict[str, TokenState]]:
        try:
            counted = count(conn)
            metered = any(c.metered for c in counted.values())
            if metered and not durability.full:
                conn.execute("ROLLBACK")
                _set_full(conn, durability, True)
                counted = count(conn)
                metered = any(c.metered for c in counted.values())
            conn.executemany(METER_EVENT_SQL, [
                (batch[index].call_id, c.subscription_id, batch[index].now, c.overage_period,
                 batch[index].now + METER_SETTLE_SECONDS)
                for index, c in counted.items() if c.metered])
            read = conn.execute(STATES_SQL, {"hashes": hashes}).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if durability.full and not metered:
            _set_full(conn, durability, False)
        states = {str(row[STATE_WIDTH]): token_state(row) for row in read}
        return counted, states

    return trip


def _set_full(conn: sqlite3.Connection, durability: _Durability, full: bool) -> None:
    conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
    durability.full = full


def _as_json(call: _Call) -> dict[str, object]:
    current = windows(call.now)
    return {"h": call.token_hash, "n": call.now, "m": current.minute, "d": current.day, "r": call.min_rank}
