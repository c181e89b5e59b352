"""Where a verified delivery's time goes, in-process (no HTTP): our processor vs. its transactions alone.

Part of `bench_webhooks.py`. Each round applies the same fresh subscription lifecycles with the
processor (4 concurrent senders, the store's group commit, `synchronous=FULL`) into a fresh copy
of an empty migrated database, while recording every statement of the batch writer's connection
with its parameters and where each transaction began and committed; and it replays exactly those
statements in exactly those transactions (BEGIN IMMEDIATE ... COMMIT, savepoints included),
straight on one sqlite3 connection (a statement cache, as ours), into another fresh copy with the
same pragmas. The replay is the floor "the transaction itself" (its SQL and its fsync); the
processor's excess over it is everything else (parsing the event's object, handlers, the event
loop, the hop to the writer's thread, group commit).

The replay runs its transactions back to back; on a busy disk its fsyncs then wait longer than
ours, which come spaced by the work between them (measured: COMMIT p50 0.4-4.2 ms in ours against
1.6-6.9 ms in the replay at the same moments), so the rate ratio swings with the disk and the CPU
per event is the steady comparison. Rounds alternate which pass goes first, so neither always
meets the other's writeback, and a change in the machine's load touches both alike.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billing.config import BillingConfig
from billing.store.sqlite import BILLING_PRAGMAS, SQLiteStore
from billing.webhooks.event import parse_event
from billing.webhooks.processor import WebhookProcessor

Lifecycles = list[list[tuple[bytes, dict[str, str]]]]


@dataclass
class Pass:
    rate: float  # events per second
    cpu_ms: float  # this process's CPU per event (all threads)
    tx_ms: list[float]  # per transaction (replay only)
    commit_ms: list[float]  # per COMMIT (replay only)


Statement = tuple[str, Sequence[Any]]


class _Recorder:
    """Stands in for the batch writer's connection on the loop's thread: records, then runs, each statement."""

    def __init__(self, conn: sqlite3.Connection, log: list[Statement]) -> None:
        self._conn, self._log = conn, log

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self._log.append((sql, params))
        return self._conn.execute(sql, params)


async def _processor_pass(path: Path, config: BillingConfig, groups: Lifecycles,
                          senders: int) -> tuple[Pass, list[Statement]]:
    store = await SQLiteStore.open(path)
    statements: list[Statement] = []
    # The bench reaches into the store's batch writer: recording is not a product feature. BEGIN and
    # COMMIT run on the connection itself (seen by its trace callback), the rest through its inline side.
    conn = store._batch._thread.connection
    conn.set_trace_callback(lambda sql: statements.append((sql, ())) if sql.startswith(("BEGIN", "COMMIT")) else None)
    store._batch._inline._conn = _Recorder(conn, statements)
    processor = WebhookProcessor(store, config)
    pending = list(groups)
    count = sum(len(group) for group in groups)

    async def sender() -> None:
        while pending:
            for body, _ in pending.pop():
                outcome = await processor.process(parse_event(body), body.decode())
                if outcome.status != "processed":
                    raise SystemExit(f"the processor answered {outcome}")

    try:
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        store._batch._thread.connection.set_trace_callback(None)
        await store.close()
    return Pass(count / elapsed, cpu * 1000 / count, [], []), statements


def _transactions(statements: list[Statement]) -> list[list[Statement]]:
    """The statements between each BEGIN and its COMMIT (the batch writer runs nothing outside them)."""
    transactions: list[list[Statement]] = []
    current: list[Statement] | None = None
    for sql, params in statements:
        if sql.startswith("BEGIN"):
            current = []
        elif sql == "COMMIT" and current is not None:
            transactions.append(current)
            current = None
        elif current is not None:
            current.append((sql, params))
    return transactions


def _replay(path: Path, transactions: list[list[Statement]], count: int) -> Pass:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in BILLING_PRAGMAS:
            conn.execute(pragma)
        tx_ms, commit_ms = [], []
        cpu, started = time.process_time(), time.perf_counter()
        for statements in transactions:
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params)
            committing = time.perf_counter()
            conn.execute("COMMIT")
            done = time.perf_counter()
            tx_ms.append((done - began) * 1000)
            commit_ms.append((done - committing) * 1000)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        conn.close()
    return Pass(count / elapsed, cpu * 1000 / count, tx_ms, commit_ms)


async def transaction_floor(config: BillingConfig, lifecycles: Callable[[str, int], Lifecycles], *, events: int,
                            rounds: int, senders: int) -> None:
    ours: list[Pass] = []
    floor: list[Pass] = []
    batches: list[int] = []
    with tempfile.TemporaryDirectory(prefix="kamiyo-bench-tx-") as tmp:
        empty = Path(tmp) / "empty.db"
        await (await SQLiteStore.open(empty)).close()  # migrated, no data
        # Every round starts from a fresh copy of the empty database, so the same events serve every
        # round. Which pass goes first alternates: the second one's fsyncs meet the first one's writeback.
        groups = lifecycles("t", events)
        count = sum(len(group) for group in groups)
        transactions: list[list[Statement]] = []
        for r in range(rounds):
            applied, replayed = Path(tmp) / f"applied{r}.db", Path(tmp) / f"replayed{r}.db"
            for copy in (applied, replayed):
                shutil.copy(empty, copy)
            if r % 2:
                floor.append(await asyncio.to_thread(_replay, replayed, transactions, count))
            one, statements = await _processor_pass(applied, config, groups, senders)
            transactions = _transactions(statements)
            ours.append(one)
            batches.append(len(transactions))
            if not r % 2:
                floor.append(await asyncio.to_thread(_replay, replayed, transactions, count))
    tx = sorted(ms for one in floor for ms in one.tx_ms)
    commits = sorted(ms for one in floor for ms in one.commit_ms)
    print(f"2. where the time goes, in-process (no HTTP): {rounds} alternating rounds of {count} events, "
          f"{senders} concurrent senders, synchronous=FULL; {statistics.median(count / b for b in batches):.1f} "
          "events per transaction (group commit)")
    print(f"   {'':58} {'events/s':>9} {'CPU ms/event':>13}")
    print(f"   {'ours: processor (parse, handlers, loop, writer thread)':58} "
          f"{statistics.median(p.rate for p in ours):9,.0f} {statistics.median(p.cpu_ms for p in ours):13.3f}")
    print(f"   {'floor: the same statements and transactions, straight':58} "
          f"{statistics.median(p.rate for p in floor):9,.0f} {statistics.median(p.cpu_ms for p in floor):13.3f}")
    print(f"   floor per transaction: p50 {_pct(tx, 0.5):.2f} ms, p99 {_pct(tx, 0.99):.2f} ms, of which COMMIT (its "
          f"fsync) p50 {_pct(commits, 0.5):.2f} ms, p99 {_pct(commits, 0.99):.2f} ms")
    ratio = statistics.median(p.rate for p in ours) / statistics.median(p.rate for p in floor)
    paired = statistics.median(a.rate / b.rate for a, b in zip(ours, floor, strict=True))
    cpu = statistics.median(p.cpu_ms for p in ours) / statistics.median(p.cpu_ms for p in floor)
    print(f"   ratio ours / floor: {ratio:.2f} in events/s (median of the rounds' paired ratios {paired:.2f}), "
          f"{cpu:.2f} in CPU per event")
    print("   (on a busy disk the replay's back-to-back COMMITs wait longer for their fsyncs than ours, spaced by the "
          "work between them: the rate ratio swings with the disk, the CPU columns are the steady comparison)")


def _pct(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
