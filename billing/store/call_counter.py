"""Admitting and counting tool calls on SQLite: one short write transaction per batch of calls.

A trip is one write transaction: the admit-and-count statement of `billing.store.call_sql` fed
the batch as JSON, the meter events of the calls it metered (past the daily quota, with overage
on), then one read of each batched token's state (what the grant shows, or why a call was refused),
committed together. It is atomic across every process on the file. The calls that arrive during
one turn of the event loop go together, so one commit serves them all.

Where a batch runs, both ways exact:
- on the event loop's own connection when the file's write lock is free at once (`busy_timeout =
  0`): a trip is tens of microseconds of SQLite, less than handing it to a thread, whose every
  SQLite step gives up the GIL and must win it back from a busy event loop. That connection never
  checkpoints the WAL (a checkpoint can wait on the disk): every `CHECKPOINT_EVERY` of its commits,
  a passive checkpoint is handed to the usage thread instead;
- on the usage connection's own thread when the lock is taken (another process's write, a
  webhook's transaction): waiting for it never blocks the event loop, and calls that arrive
  meanwhile queue behind it and go together in its next trip.

Durability: counts alone may be lost to a power cut (both connections commit with
`synchronous=NORMAL`, no fsync per call), but a meter event is billing state, so a trip that meters
a call commits with `synchronous=FULL`, and only on the usage thread (an fsync never blocks the
event loop): a trip on the loop's connection that finds a metered call rolls back and hands its
batch to the thread. SQLite cannot change the mode inside a transaction, so a thread trip at NORMAL
that finds one rolls back, switches and runs again (the re-run decides anew). While calls keep
being metered the thread's connection stays at FULL; the first trip that meters nothing commits at
FULL and switches back. No metered call returns (so no tool runs on it) before its event is on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from billing.errors import StoreError
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

logger = logging.getLogger(__name__)

MAX_BATCH = 256
CHECKPOINT_EVERY = 1000  # commits on the loop's connection between passive WAL checkpoints
_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

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
    """A connection's synchronous mode: FULL lets a trip meter calls (touched only where it runs)."""

    full: bool = False
    may_switch: bool = True  # False on the loop's connection: its metered batches go to the thread


class _Metered(Exception):
    """The trip metered a call on a connection that must not fsync: it was rolled back."""


_Outcome = tuple[dict[int, CallCount], dict[str, TokenState]]


class CallCounter:
    def __init__(self, usage: SQLiteThread, on_loop: sqlite3.Connection | None = None,
                 tiers: TierTable = DEFAULT_TIERS) -> None:
        self._usage = usage
        self._on_loop = on_loop
        self._consume = admit_and_count_sql(CALLS_SOURCE, tiers)
        self._thread_mode = _Durability()
        self._loop_mode = _Durability(may_switch=False)
        self._queued: list[_Call] = []  # this turn of the loop's calls
        self._flush: asyncio.Handle | None = None
        self._waiting: list[_Call] = []  # calls for the usage thread (the write lock was taken)
        self._worker: asyncio.Task[None] | None = None
        self._since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def admit(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "") -> Admission:
        """Admit and count one call (`call_id` names its meter event if it is metered)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admission] = loop.create_future()
        self._queued.append(_Call(token_hash, now, min_rank, call_id or new_call_id(), future))
        if self._flush is None:
            self._flush = loop.call_soon(self._run_queued)
        return await future

    async def refund(self, subscription_id: str, counted_in: Windows) -> None:
        params = (counted_in.minute, counted_in.day, subscription_id)
        await self._usage.run(lambda conn: conn.execute(REFUND_SQL, params).close())

    def _run_queued(self) -> None:
        """Run this turn's calls on the loop's connection, or hand them to the thread when it cannot."""
        self._flush = None
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), MAX_BATCH):
            batch = queued[start:start + MAX_BATCH]
            if self._on_loop is None or self._waiting or not self._run_on_loop(batch):
                self._wait_in_thread(batch)

    def _run_on_loop(self, batch: list[_Call]) -> bool:
        """Whether the batch ran (and its callers have their answers); False when the lock is taken."""
        assert self._on_loop is not None
        try:
            outcome = _trip(batch, self._consume, self._loop_mode)(self._on_loop)
        except _Metered:
            return False
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _BUSY:  # the primary code of an extended one
                return False
            _fail(batch, StoreError(f"SQLite failed: OperationalError: {exc}"))
            return True
        except sqlite3.Error as exc:
            _fail(batch, StoreError(f"SQLite failed: {type(exc).__name__}: {exc}"))
            return True
        _answer(batch, outcome)
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._since_checkpoint = 0
            self._checkpoint = asyncio.get_running_loop().create_task(self._passive_checkpoint())
        return True

    def _wait_in_thread(self, batch: list[_Call]) -> None:
        self._waiting.extend(batch)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                outcome = await self._usage.run(_trip(batch, self._consume, self._thread_mode))
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                _fail(batch, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            _answer(batch, outcome)

    async def _passive_checkpoint(self) -> None:
        try:
            await self._usage.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").close())
        except StoreError:  # the next one will try again; the WAL only grows meanwhile
            logger.exception("passive WAL checkpoint failed")


def _answer(batch: list[_Call], outcome: _Outcome) -> None:
    counts, states = outcome
    for index, call in enumerate(batch):
        if not call.result.done():
            call.result.set_result(Admission(counts.get(index), states.get(call.token_hash)))


def _fail(batch: list[_Call], error: BaseException) -> None:
    for call in batch:
        if not call.result.done():
            call.result.set_exception(error)


def _trip(batch: list[_Call], consume: str, mode: _Durability) -> Callable[[sqlite3.Connection], _Outcome]:
    payload = json.dumps([_as_json(call) for call in batch])
    hashes = json.dumps(sorted({call.token_hash for call in batch}))

    def count(conn: sqlite3.Connection) -> dict[int, CallCount]:
        conn.execute("BEGIN IMMEDIATE")
        return {int(row[0]): call_count(row[1:]) for row in conn.execute(consume, {"batch": payload}).fetchall()}

    def trip(conn: sqlite3.Connection) -> _Outcome:
        try:
            counted = count(conn)
            metered = any(c.metered for c in counted.values())
            if metered and not mode.full:
                conn.execute("ROLLBACK")
                if not mode.may_switch:
                    raise _Metered
                _set_full(conn, mode, True)
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
        if mode.full and not metered:
            _set_full(conn, mode, False)
        states = {str(row[STATE_WIDTH]): token_state(row) for row in read}
        return counted, states

    return trip


def _set_full(conn: sqlite3.Connection, mode: _Durability, full: bool) -> None:
    conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
    mode.full = full


def _as_json(call: _Call) -> dict[str, object]:
    current = windows(call.now)
    return {"h": call.token_hash, "n": call.now, "m": current.minute, "d": current.day, "r": call.min_rank}
