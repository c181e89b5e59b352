"""Admitting and counting tool calls on SQLite: one trip to the usage thread per batch of calls.

A trip is one write transaction: the admit-and-count statement of `billing.store.call_sql` fed
the batch as JSON, the meter events of the calls it metered (past the daily quota, with overage
on), then one read of the token states the batch needs (why a call was refused, and what the
account view shows for calls that asked for it), committed together. It is atomic across every
process on the file. Calls that arrive while a trip runs wait and go together in the next one (a
batch of one when the server is idle), so one thread hop and one commit serve them all. The account
view's token states are read once and kept while no other connection commits to the file (`_States`,
checked with `PRAGMA data_version` inside the trip's transaction): a webhook, a revocation, another
process's call all make the next trip read them again.

The calls made in one turn of the event loop are flushed together (while more keep arriving, the
flush waits up to `MAX_WAITS` more turns for them). While the usage thread is idle
(nothing queued or in flight there) and the batch is small (`MAX_HERE`), its trip runs on the
loop's own thread, which spares it two thread hops and the GIL handoffs between them: its BEGIN
IMMEDIATE never waits there (the connection's busy timeout is 0; when another connection holds the
write lock, the trip goes to the thread, which waits for it), and it commits at NORMAL, which
writes the WAL without an fsync. A trip that finds it would meter a call rolls back and goes to the
thread (it must commit at FULL, and an fsync never runs on the loop). Checkpoints never run on the
loop either: the usage connection does not checkpoint on commit; every `CHECKPOINT_EVERY` commits
a passive checkpoint job runs on its thread (the other connections still checkpoint on theirs).
Measured (bench_core, raw client, 2026-07-28 stateless `get_account_status`, 8 connections, each ÷
a bare server): 0.824 -> 0.916 in calls/s and 1.299 -> 1.118 in server CPU per call against trips
that all went to the thread; a lone caller's cold-token decision 151 -> 68 us.

Batches that arrive while the thread is busy, or larger ones, still go to the thread. (An earlier
measurement on a loaded machine, load ~8, had found every trip on the loop slower than on the
thread; re-measured on a quiet machine with this flush, the loop wins, as above.)

Durability: counts alone may be lost to a power cut (the usage connection commits with
`synchronous=NORMAL`, no fsync per call), but a meter event is billing state, so a trip that meters
a call commits with `synchronous=FULL`. SQLite cannot change the mode inside a transaction, so a
trip at NORMAL that finds one rolls back, switches and runs again (the re-run decides anew). While
calls keep being metered the connection stays at FULL; the first trip that meters nothing commits
at FULL and switches back. No metered call returns (so no tool runs on it) before its event is on
disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

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
from billing.store.sqlite_connection import FAILURES, is_busy, store_error, waiting_for_locks
from billing.store.sqlite_thread import SQLiteThread
from billing.tiers import DEFAULT_TIERS, TierTable

logger = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_HERE = 64  # a batch of at most this many calls may make its trip on the loop (~1 ms; longer ones hold it up)
MAX_WAITS = 2  # turns a flush may wait while its batch grows
# Commits between two passive checkpoints of the WAL. A checkpoint syncs the WAL and the file (two
# fsyncs) and copies the few pages the counts touch; fewer checkpoints, fewer fsyncs. The WAL stays
# under ~2,048 frames (8 MiB).
CHECKPOINT_EVERY = 2048
# The usage connection's own settings (the counter never waits for the write lock on the loop).
USAGE_PRAGMAS = ("PRAGMA busy_timeout = 0", "PRAGMA wal_autocheckpoint = 0")

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
    with_state: bool
    result: asyncio.Future[Admission]


@dataclass(slots=True)
class _Durability:
    """The usage connection's synchronous mode: FULL lets a trip meter calls (touched only inside a
    trip or a commit job, which never overlap)."""

    full: bool = False


@dataclass(slots=True)
class _States:
    """Token states the usage connection has read, valid while no other connection has committed.

    `PRAGMA data_version` changes exactly when another connection (of this process or another) has
    committed to the file since; the usage connection itself only writes counts and meter events,
    which the states' counters are refreshed from. Read and written only inside trips, which never
    overlap.
    """

    version: int = -1
    by_hash: dict[str, TokenState] = field(default_factory=dict)


MAX_STATES = 50_000  # token states kept at most (~1 kB each); beyond that the cache starts again


@dataclass(slots=True)
class _Outcome:
    counts: dict[int, CallCount]
    states: dict[str, TokenState]
    # A trip on the loop at FULL leaves its transaction open: its COMMIT (an fsync) runs on the usage thread.
    open: bool = False
    metered: bool = False


class _Elsewhere(Exception):
    """This trip cannot be made on the event loop: another connection holds the write lock."""


class CallCounter:
    """Batches concurrent `admit` calls into one trip to the usage connection's thread (a lone call
    makes its trip on the loop).

    The usage connection must have been opened with `USAGE_PRAGMAS`; `busy_timeout_ms` is how long
    a trip on the thread waits for the write lock.
    """

    def __init__(self, usage: SQLiteThread, tiers: TierTable = DEFAULT_TIERS, *, busy_timeout_ms: int) -> None:
        self._usage = usage
        self._consume = admit_and_count_sql(CALLS_SOURCE, tiers)
        self._mode = _Durability()
        self._states = _States()
        self._busy_timeout_ms = busy_timeout_ms
        self._pending: list[_Call] = []
        self._worker: asyncio.Task[None] | None = None
        self._flushing = False
        self._waits = 0  # turns this flush has waited for more calls
        self._seen = 0  # the batch's size when it last waited
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def admit(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "",
                    with_state: bool = True) -> Admission:
        """Admit and count one call (`call_id` names its meter event if it is metered); the token's state
        comes back for a refusal, and for an admitted call `with_state`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admission] = loop.create_future()
        self._pending.append(_Call(token_hash, now, min_rank, call_id or new_call_id(), with_state, future))
        if not self._flushing and (self._worker is None or self._worker.done()):
            self._flushing = True  # the calls made in this turn of the loop go together
            loop.call_soon(self._flush)
        return await future

    async def refund(self, subscription_id: str, counted_in: Windows) -> None:
        params = (counted_in.minute, counted_in.day, subscription_id)

        def refund(conn: sqlite3.Connection) -> None:
            with waiting_for_locks(conn, self._busy_timeout_ms):
                conn.execute(REFUND_SQL, params).close()

        await self._usage.run(refund)

    def _flush(self) -> None:
        """Decide the calls made in the last turn of the loop: here when they are few and the usage
        thread is idle, else on the thread.

        While calls keep arriving (the batch has more than one and grew since the last look), wait one
        more turn, up to `MAX_WAITS` turns: the requests the loop is still reading join the batch. A
        lone call is decided at once.
        """
        if self._waits < MAX_WAITS and 1 < len(self._pending) > self._seen:
            self._waits += 1
            self._seen = len(self._pending)
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._flushing = False
        self._waits = self._seen = 0
        if not self._pending or (self._worker is not None and not self._worker.done()):
            return
        if len(self._pending) <= MAX_HERE and self._usage.idle:
            batch, self._pending = self._pending, []
            try:
                outcome = self._here(batch)
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                _fail(batch, exc)
                if not isinstance(exc, Exception):
                    raise
                return
            if outcome is None:
                self._pending = batch + self._pending
            elif outcome.open:
                self._commit_elsewhere(batch, outcome)
                return
            else:
                _answer(batch, outcome)
                return
        self._worker = asyncio.create_task(self._drain())

    def _here(self, batch: list[_Call]) -> _Outcome | None:
        """The batch's trip on the loop's thread; None when it must go to the usage thread instead.

        Raises:
            StoreError: SQLite failed.
        """
        try:
            outcome = _trip(batch, self._consume, self._mode, self._states, None)(self._usage.connection)
        except _Elsewhere:
            return None
        except FAILURES as exc:
            raise store_error(exc) from exc
        if not outcome.open:
            self._committed()
        return outcome

    def _commit_elsewhere(self, batch: list[_Call], outcome: _Outcome) -> None:
        """Queue the COMMIT of the batch's open transaction on the usage thread now (nothing else may use
        the connection first; at FULL its fsync never runs on the loop), and answer the batch once done."""
        mode, metered = self._mode, outcome.metered
        try:
            committing = self._usage.submit(lambda conn: _commit(conn, mode, metered))
        except BaseException as exc:  # closed under it: nothing is committed, every waiter learns why
            with contextlib.suppress(sqlite3.Error):  # a closed connection has nothing to roll back
                self._usage.connection.execute("ROLLBACK")
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._worker = asyncio.create_task(self._committed_elsewhere(batch, outcome, committing))

    async def _committed_elsewhere(self, batch: list[_Call], outcome: _Outcome,
                                   committing: asyncio.Future[None]) -> None:
        """Answer the batch once its COMMIT is done, then let the calls that arrived meanwhile make their trip."""
        try:
            await committing
        except BaseException as exc:  # every waiter learns of the failure; none hangs
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._committed()
            _answer(batch, outcome)
        finally:
            if self._pending and not self._flushing:
                self._flushing = True
                asyncio.get_running_loop().call_soon(self._flush)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcome = await self._usage.run(_trip(batch, self._consume, self._mode, self._states,
                                                           self._busy_timeout_ms))
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                _fail(batch, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            self._committed()
            _answer(batch, outcome)

    def _committed(self) -> None:
        """Count a commit; every `CHECKPOINT_EVERY` start a passive checkpoint on the usage thread."""
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and (self._checkpoint is None or self._checkpoint.done()):
            self._checkpoint = asyncio.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        try:
            await self._usage.run(_checkpoint)
        except StoreError as exc:  # the next one tries again; the other connections checkpoint too
            logger.warning("usage WAL checkpoint failed: %s", exc)


def _answer(batch: list[_Call], outcome: _Outcome) -> None:
    counts, states = outcome.counts, outcome.states
    for index, call in enumerate(batch):
        if not call.result.done():
            call.result.set_result(Admission(counts.get(index), states.get(call.token_hash)))


def _fail(batch: list[_Call], error: BaseException) -> None:
    for call in batch:
        if not call.result.done():
            call.result.set_exception(error)


def _trip(batch: list[_Call], consume: str, mode: _Durability, known: _States,
          busy_timeout_ms: int | None) -> Callable[[sqlite3.Connection], _Outcome]:
    """The batch's trip. Only the states the batch needs are read (the calls that asked for theirs, and
    every refused one): for most tools a trip is one statement inside its transaction, and the fewer
    SQLite calls, the fewer times the GIL changes hands. An admitted call's state comes from `known`
    while no other connection has committed since it was read, with the counters this trip wrote; a
    refused call's state is always read (its counters explain the refusal).

    `busy_timeout_ms` None: the trip runs on the event loop's thread, so it never waits for the write
    lock (it raises `_Elsewhere`, having changed nothing, instead) and never commits at FULL: it leaves
    such a transaction open (`_Outcome.open`) for `_commit` on the usage thread.
    """
    payload = json.dumps([_as_json(call) for call in batch])
    on_loop = busy_timeout_ms is None

    def count(conn: sqlite3.Connection) -> dict[int, CallCount]:
        _begin(conn, busy_timeout_ms)
        return {int(row[0]): call_count(row[1:]) for row in conn.execute(consume, {"batch": payload}).fetchall()}

    def trip(conn: sqlite3.Connection) -> _Outcome:
        try:
            counted = count(conn)
            metered = any(c.metered for c in counted.values())
            if metered and not mode.full:  # the mode cannot change inside a transaction: decide again at FULL
                conn.execute("ROLLBACK")
                _set_full(conn, mode, True)
                counted = count(conn)
                metered = any(c.metered for c in counted.values())
            if metered:
                conn.executemany(METER_EVENT_SQL, [
                    (batch[index].call_id, c.subscription_id, batch[index].now, c.overage_period,
                     batch[index].now + METER_SETTLE_SECONDS)
                    for index, c in counted.items() if c.metered])
            refused = {call.token_hash for i, call in enumerate(batch) if i not in counted}
            asked = {call.token_hash for i, call in enumerate(batch) if call.with_state and i in counted}
            version = _data_version(conn) if asked else known.version
            if version != known.version or len(known.by_hash) > MAX_STATES:
                known.by_hash.clear()
            wanted = sorted(refused | (asked - known.by_hash.keys()))
            read = conn.execute(STATES_SQL, {"hashes": json.dumps(wanted)}).fetchall() if wanted else []
            left_open = on_loop and mode.full
            if not left_open:
                _commit(conn, mode, metered)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        states = {str(row[STATE_WIDTH]): token_state(row) for row in read}
        if asked:
            known.version = version
            known.by_hash.update((h, states[h]) for h in asked if h in states)
            _with_counts(states, asked, known, batch, counted)
        return _Outcome(counted, states, open=left_open, metered=metered)

    return trip


def _commit(conn: sqlite3.Connection, mode: _Durability, metered: bool) -> None:
    """COMMIT (rolled back if it fails); after a trip at FULL that metered nothing, back to NORMAL."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if mode.full and not metered:
        _set_full(conn, mode, False)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _with_counts(states: dict[str, TokenState], asked: set[str], known: _States, batch: list[_Call],
                 counted: dict[int, CallCount]) -> None:
    """Fill in the asked states not read in this trip: the known ones, with their subscription's
    counters as this trip left them (its last counted call's: calls are counted in order)."""
    last = {c.subscription_id: (index, c) for index, c in sorted(counted.items())}
    for token_hash in asked - states.keys():
        state = known.by_hash[token_hash]
        index, count = last[state.subscription_id]
        current = windows(batch[index].now)
        # Spelled out: `dataclasses.replace` walks the fields at run time and costs several times more.
        states[token_hash] = TokenState(
            state.token_id, state.user_id, state.email, state.subscription_id, state.kind,
            state.stripe_subscription_id, state.stripe_customer_id, state.tier, state.status,
            state.current_period_end, state.cancel_at_period_end, state.payment_state, state.created_at,
            state.expires_at, state.revoked_at, state.revoked_reason, minute_start=current.minute,
            minute_count=count.minute_count, day_start=current.day, day_count=count.day_count,
            credential=state.credential, overage_item_id=state.overage_item_id,
            overage_cap_cents=state.overage_cap_cents, overage_period=count.overage_period,
            overage_count=count.overage_count)


def _begin(conn: sqlite3.Connection, busy_timeout_ms: int | None) -> None:
    """BEGIN IMMEDIATE; when another connection holds the write lock, wait up to `busy_timeout_ms` for
    it (None: do not wait, raise `_Elsewhere`)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        if busy_timeout_ms is None:
            raise _Elsewhere from None
        with waiting_for_locks(conn, busy_timeout_ms):
            conn.execute("BEGIN IMMEDIATE")


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _set_full(conn: sqlite3.Connection, mode: _Durability, full: bool) -> None:
    conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
    mode.full = full


def _as_json(call: _Call) -> dict[str, object]:
    current = windows(call.now)
    return {"h": call.token_hash, "n": call.now, "m": current.minute, "d": current.day, "r": call.min_rank}
