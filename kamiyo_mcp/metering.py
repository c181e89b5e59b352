"""Upgrade links and metered overage wired into the app: the upgrade pages, the upgrade offers of the
gate's refusals, and the background tasks (the meter-event sender, the upgrade notices).

    metering = MeteringWiring(runtime, stripe_gateway)
    server = build_server(..., upgrades=metering.offers)
    routes = [*metering.routes(), ...]
    async with runtime.opened(), stripe_gateway.opened(), metering.sending(), ...:    # in the lifespan

Everything is built from the runtime's open store and settings when first needed, never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import Route

from billing.http.checkout import StripeGatewaySlot
from billing.http.overage import overage_routes
from billing.http.upgrade import upgrade_routes
from billing.meter_sender import MeterEventSender
from billing.upgrade import UpgradeLinks
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.upgrade_notices import UpgradeNotices
from kamiyo_mcp.upgrade_prompt import UpgradeOffers


class MeteringWiring:
    def __init__(self, runtime: Runtime, gateway: StripeGatewaySlot) -> None:
        self.runtime = runtime
        self.gateway = gateway
        self._links: UpgradeLinks | None = None
        self.sender: MeterEventSender | None = None
        self.offers = UpgradeOffers(self.links, UpgradeNotices(lambda: runtime.store, clock=runtime.clock))

    def links(self) -> UpgradeLinks:
        """The upgrade links of the store open now (rebuilt when the runtime reopened)."""
        store = self.runtime.store
        if self._links is None or self._links.store is not store:
            self._links = UpgradeLinks(store, self.runtime.settings.billing, clock=self.runtime.clock)
        return self._links

    def routes(self) -> list[Route]:
        billing = self.runtime.settings.billing
        return [*upgrade_routes(self.links, self.gateway, billing.tiers),
                *overage_routes(lambda: self.runtime.authority, billing, self.gateway)]

    @asynccontextmanager
    async def sending(self) -> AsyncIterator[MeterEventSender]:
        """Run the meter-event sender (idle unless overage is configured) and the upgrade notices for the block."""
        sender = MeterEventSender(self.runtime.store, self.gateway, self.runtime.settings.billing,
                                  clock=self.runtime.clock)
        async with sender.running(), self.offers.notices.running():
            self.sender = sender
            try:
                yield sender
            finally:
                self.sender = None
