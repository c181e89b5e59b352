"""Reconciliation on a schedule inside `serve`, one process at a time across all of them.

Every process checks the job's row now and then; the first to find it due takes its lease in a
write transaction (which also records the start, so the others find it not due) and runs it,
renewing the lease while it runs. The row keeps the last run's result for `/healthz` and
`/metrics` on every process. A process that dies mid-run leaves a lease that expires; a run that
failed (or never finished) is retried sooner than a full interval.

`run_leased` is also what `kamiyo-mcp reconcile --fix` uses, so an operator's run and a scheduled
one never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from billing.config import BillingConfig
from billing.errors import BillingError
from billing.reconcile.report import Report, iso
from billing.reconcile.runner import Reconciler
from billing.store import Store
from billing.stripe_gateway import StripeGateway

logger = logging.getLogger(__name__)

JOB = "reconcile"
LEASE_SECONDS = 300
FIRST_RUN_DELAY_SECONDS = 15.0
CHECK_EVERY_SECONDS = 60.0
RETRY_FAILED_SECONDS = 300

RunObserver = Callable[["Report | None", "BaseException | None", float], None]  # (report, error, seconds)


class LeaseHeld(BillingError):
    """Another process is running the reconciliation."""


def new_holder() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


async def run_leased(store: Store, reconciler: Reconciler, *, holder: str, clock: Callable[[], float],
                     started_before: int | None = None, since: int | None = None,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Report | None:
    """Take the job's lease and run a healing reconciliation, renewing the lease every `LEASE_SECONDS / 3`
    (`sleep`) while it runs; None when the job is not due.

    Raises:
        LeaseHeld: another process holds the lease (and `started_before` is None: the caller insists).
        StripeGatewayError: Stripe failed the run (recorded as the job's result first).
    """
    if not await store.start_job(JOB, holder, now=int(clock()), lease_seconds=LEASE_SECONDS,
                                 started_before=started_before):
        if started_before is not None:
            return None
        state = await store.job_state(JOB)
        if state is None:  # released between the two reads: the caller may simply try again
            raise LeaseHeld("a reconciliation was running in another process; try again")
        raise LeaseHeld(f"a reconciliation is running in another process ({state.holder}); try again when it has "
                        f"finished (if that process has died, its lease expires at {iso(state.lease_expires_at)})")
    started = time.perf_counter()
    async with _renewing(store, holder, clock, sleep):
        try:
            report = await reconciler.run(fix=True, since=since)
        except BaseException as exc:
            result = failure_summary(exc, time.perf_counter() - started, int(clock()))
            with contextlib.suppress(Exception):
                await store.finish_job(JOB, holder, now=int(clock()), result=json.dumps(result))
            raise
    await store.finish_job(JOB, holder, now=int(clock()), result=json.dumps(report.summary()))
    return report


def failure_summary(exc: BaseException, seconds: float, now: int) -> dict[str, Any]:
    message = "the server stopped during the run" if isinstance(exc, asyncio.CancelledError) else str(exc)
    return {"result": "failed", "error": message[:500], "finished_at": iso(now), "duration_seconds": round(seconds, 3)}


@contextlib.asynccontextmanager
async def _renewing(store: Store, holder: str, clock: Callable[[], float],
                    sleep: Callable[[float], Awaitable[None]]) -> AsyncIterator[None]:
    async def renew() -> None:
        while True:
            await sleep(LEASE_SECONDS / 3)
            if not await store.renew_job(JOB, holder, now=int(clock()), lease_seconds=LEASE_SECONDS):
                logger.warning("reconcile: the lease was lost (the run took over %d s); another process may start",
                               LEASE_SECONDS)
                return

    task = asyncio.create_task(renew(), name="kamiyo-reconcile-lease")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    interval: float  # seconds between runs (cluster-wide)
    first_delay: float = FIRST_RUN_DELAY_SECONDS
    check_every: float = CHECK_EVERY_SECONDS


class ReconcileSchedule:
    """The scheduled job of one `serve` process; `running()` holds its task for the app's lifespan."""

    def __init__(self, store: Store, config: BillingConfig, schedule: ScheduleConfig, *,
                 on_run: RunObserver | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 gateway: Callable[[], StripeGateway] | None = None) -> None:
        self._store = store
        self._config = config
        self._schedule = schedule
        self._on_run = on_run or (lambda report, error, seconds: None)
        self._clock = clock
        self._sleep = sleep
        self._gateway_factory = gateway or self._new_gateway
        self.holder = new_holder()

    def _new_gateway(self) -> StripeGateway:
        assert self._config.stripe_secret_key
        return StripeGateway(self._config.stripe_secret_key, self._config.stripe_api_base)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop(), name="kamiyo-reconcile")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        delay = min(self._schedule.first_delay, self._schedule.interval)
        async with self._gateway_factory() as gateway:
            reconciler = Reconciler(self._store, gateway, self._config, clock=self._clock)
            while True:
                await self._sleep(delay)
                try:
                    await self.tick(reconciler)
                except Exception:  # the top of a scheduled task: logged, and the schedule goes on
                    logger.exception("reconcile: the scheduled run could not be started")
                delay = min(self._schedule.check_every, self._schedule.interval)

    async def tick(self, reconciler: Reconciler) -> Report | None:
        """Run the reconciliation if it is due and no other process runs it; None when it was not run."""
        now = int(self._clock())
        state = await self._store.job_state(JOB)
        wait = self._schedule.interval
        if state is not None and _last_run_failed(state.last_started_at, state.last_finished_at, state.last_result):
            wait = min(wait, RETRY_FAILED_SECONDS)
        if state is not None and (state.held(now) or
                                  (state.last_started_at is not None and state.last_started_at > now - wait)):
            return None
        started = time.perf_counter()
        try:
            report = await run_leased(self._store, reconciler, holder=self.holder, clock=self._clock,
                                      started_before=int(now - wait) + 1)
        except Exception as exc:  # Stripe or the store failed the run: recorded, observed, retried later
            logger.warning("reconcile: the scheduled run failed: %s", exc)
            self._on_run(None, exc, time.perf_counter() - started)
            return None
        if report is not None:
            level = logging.WARNING if report.drift else logging.INFO
            logger.log(level, "reconcile: %s", report.lines()[0])
            self._on_run(report, None, report.duration)
        return report


def _last_run_failed(started: int | None, finished: int | None, result: str | None) -> bool:
    if started is None:
        return False
    if finished is None or finished < started:
        return True
    try:
        return bool(json.loads(result or "{}").get("result") == "failed")
    except (ValueError, AttributeError):
        return True
