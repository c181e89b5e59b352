"""Reconciliation with Stripe wired into `serve`: the schedule in the lifespan, its state for /healthz.

    reconciliation = ReconcileWiring(runtime, on_run=metrics.observe_reconcile)
    async with runtime.opened(), reconciliation.running(), ...:    # in the lifespan

On when `KAMIYO_RECONCILE_INTERVAL` is not 0 and billing has a key and at least one price.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from billing.reconcile.report import iso
from billing.reconcile.schedule import JOB, ReconcileSchedule, RunObserver, ScheduleConfig
from kamiyo_mcp.runtime import Runtime


class ReconcileWiring:
    def __init__(self, runtime: Runtime, *, on_run: RunObserver | None = None,
                 first_delay: float | None = None) -> None:
        self.runtime = runtime
        self._on_run = on_run
        self._first_delay = first_delay
        self.schedule: ReconcileSchedule | None = None

    @property
    def enabled(self) -> bool:
        settings = self.runtime.settings
        return settings.reconcile_interval > 0 and settings.billing.billing_enabled and bool(settings.billing.prices)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ReconcileSchedule | None]:
        """Run the schedule for the block (nothing when reconciliation is off)."""
        if not self.enabled:
            yield None
            return
        settings = self.runtime.settings
        config = ScheduleConfig(interval=settings.reconcile_interval)
        if self._first_delay is not None:
            config = ScheduleConfig(interval=config.interval, first_delay=self._first_delay)
        schedule = ReconcileSchedule(self.runtime.store, settings.billing, config, on_run=self._on_run)
        async with schedule.running():
            self.schedule = schedule
            try:
                yield schedule
            finally:
                self.schedule = None

    async def health(self) -> dict[str, Any]:
        """The last run of any process, as /healthz shows it."""
        if not self.enabled:
            return {"enabled": False}
        shown: dict[str, Any] = {"enabled": True, "interval_seconds": self.runtime.settings.reconcile_interval}
        job = await self.runtime.store.job_state(JOB)
        shown["running"] = job is not None and job.held(int(time.time()))
        if job is None or job.last_finished_at is None:
            shown["last_run"] = None
            return shown
        try:
            result = json.loads(job.last_result or "null")
        except ValueError:
            result = None
        shown["last_run"] = {"finished_at": iso(job.last_finished_at), **(result if isinstance(result, dict) else {})}
        return shown
