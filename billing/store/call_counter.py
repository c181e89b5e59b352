"""Admitting and counting tool calls on SQLite: one atomic statement per batch of concurrent calls.

The statement is `billing.store.call_sql`'s, fed a JSON batch, so it is atomic across every process
on the file. Calls that arrive while a statement runs wait and go together in the next one (a
batch of one when the server is idle): one trip to the connection's thread and one commit serve
them all, which is what makes the per-call path cheap.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiosqlite

from billing.store.call_sql import admit_and_count_sql, window_starts
from billing.store.records import CallCount
from billing.store.sqlite_connection import sqlite_errors

MAX_BATCH = 256


def consume_sql() -> str:
    """The batched admit-and-count statement; `:batch` is a JSON array of call objects."""
    return admit_and_count_sql(
        "(SELECT CAST(key AS INTEGER) AS id, value ->> '$.h' AS hash, value ->> '$.n' AS now,"
        " value ->> '$.m' AS minute, value ->> '$.d' AS day, value ->> '$.r' AS min_rank"
        " FROM json_each(:batch))"
    )


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
        payload = json.dumps([_as_json(call) for call in batch])
        with sqlite_errors():
            rows = await self._conn.execute_fetchall(self._sql, {"batch": payload})
        return {int(row[0]): CallCount(*row[1:]) for row in rows}


def _as_json(call: _Call) -> dict[str, object]:
    minute, day = window_starts(call.now)
    return {"h": call.token_hash, "n": call.now, "m": minute, "d": day, "r": call.min_rank}
