"""Admitting and counting tool calls on SQLite: one trip per batch of concurrent calls.

A trip is one write transaction on the usage connection's own thread: the admit-and-count
statement of `billing.store.call_sql` fed the batch as JSON, then one read of every batched token's
state (what the grant shows, or why a call was refused), committed together. It is atomic across
every process on the file. Calls that arrive while a trip runs wait and go together in the next one
(a batch of one when the server is idle), so one thread hop and one commit serve them all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

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
from billing.store.records import Admission, CallCount, TokenState
from billing.store.sqlite_thread import SQLiteThread

MAX_BATCH = 256

CONSUME_SQL = admit_and_count_sql(
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
    result: asyncio.Future[Admission]


class CallCounter:
    """Batches concurrent `admit` calls into one trip to the usage connection's thread."""

    def __init__(self, usage: SQLiteThread) -> None:
        self._usage = usage
        self._pending: list[_Call] = []
        self._worker: asyncio.Task[None] | None = None

    async def admit(self, token_hash: str, *, now: int, min_rank: int) -> Admission:
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._pending.append(_Call(token_hash, now, min_rank, future))
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
                counts, states = await self._usage.run(_trip(batch))
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


def _trip(batch: list[_Call]) -> _Trip:
    payload = json.dumps([_as_json(call) for call in batch])
    hashes = json.dumps(sorted({call.token_hash for call in batch}))

    def trip(conn: sqlite3.Connection) -> tuple[dict[int, CallCount], dict[str, TokenState]]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            counted = conn.execute(CONSUME_SQL, {"batch": payload}).fetchall()
            read = conn.execute(STATES_SQL, {"hashes": hashes}).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        states = {str(row[STATE_WIDTH]): token_state(row) for row in read}
        return {int(row[0]): call_count(row[1:]) for row in counted}, states

    return trip


def _as_json(call: _Call) -> dict[str, object]:
    current = windows(call.now)
    return {"h": call.token_hash, "n": call.now, "m": current.minute, "d": current.day, "r": call.min_rank}
