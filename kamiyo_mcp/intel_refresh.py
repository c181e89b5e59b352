"""The incident-data refresh wired into `serve`: its loop in the lifespan, its state for /healthz.

    refresh = IntelRefreshWiring(runtime)
    async with runtime.opened(), refresh.running(), ...:    # in the lifespan

It loads `KAMIYO_INTEL_SOURCES` into an empty store, then re-fetches the http(s) ones every
`KAMIYO_INTEL_REFRESH_INTERVAL` (0: never) with conditional requests (see kamiyo_mcp.intel.refresh).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from billing.background import in_background
from kamiyo_mcp.intel.refresh import RefreshSchedule
from kamiyo_mcp.runtime import Runtime


class IntelRefreshWiring:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schedule: RefreshSchedule | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the load-and-refresh loop for the block."""
        settings = self.runtime.settings
        schedule = RefreshSchedule(self.runtime.intel, settings.intel_sources, settings.intel_refresh_interval)
        async with in_background(schedule.run, schedule.stop, "kamiyo-intel-refresh"):
            self.schedule = schedule
            try:
                yield
            finally:
                self.schedule = None

    async def health(self) -> dict[str, Any]:
        """What /healthz shows about the incident data."""
        if self.schedule is None:
            return {"refresh": "off"}
        return await self.schedule.health()
