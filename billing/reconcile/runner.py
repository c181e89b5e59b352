"""One reconciliation run: read everything first, then (with `fix`) heal.

    report = await Reconciler(store, gateway, config).run(fix=True)

All of Stripe is read before anything is written, so when Stripe is unreachable or refuses the key
halfway, the run fails with `StripeGatewayError` and nothing was applied. Healing then needs only
the store. Missed events are applied before the drifted subscriptions; a subscription's read is
dated after every missed event, so it wins over them by the same "newer wins" rule. Subscriptions
that agreed with Stripe but that a missed event is about are checked again after the events: an
event of the same second as a newer state can undo it (Stripe's seconds do not order them), and the
read then heals that too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from billing.config import BillingConfig
from billing.errors import ConfigurationError
from billing.reconcile.heal import Healer
from billing.reconcile.report import Report
from billing.reconcile.scan import Scanner
from billing.store import Store
from billing.stripe_gateway import StripeGateway
from billing.stripe_pacing import Pacer
from billing.stripe_reads import StripeReads
from billing.webhooks.processor import WebhookProcessor
from billing.webhooks.registry import HandlerRegistry, default_registry


class Reconciler:
    def __init__(self, store: Store, gateway: StripeGateway, config: BillingConfig, *,
                 registry: HandlerRegistry | None = None, clock: Callable[[], float] = time.time,
                 processor: WebhookProcessor | None = None, pacer: Pacer | None = None) -> None:
        if not config.prices:
            raise ConfigurationError("no STRIPE_PRICE_MCP_* price is configured: nothing to reconcile")
        self._store = store
        self._reads = StripeReads(gateway, pacer=pacer)
        self._config = config
        self._registry = registry if registry is not None else default_registry()
        self._clock = clock
        self._processor = processor or WebhookProcessor(store, config, self._registry, clock=clock)

    async def run(self, *, fix: bool, since: int | None = None) -> Report:
        """Compare the store with Stripe and, with `fix`, heal every drift found.

        Raises:
            StripeGatewayError: Stripe refused a read or could not be reached (nothing was written).
        """
        started, tick = self._clock(), time.perf_counter()
        calls, limited = self._reads.pacer.calls, self._reads.pacer.rate_limited
        report = Report(fix=fix, since=since, started_at=started)
        scanner = Scanner(self._reads, self._store, self._config, now=lambda: int(self._clock()), since=since,
                          event_types=self._registry.event_types)
        try:
            report.missed = await scanner.missed_events()
            report.findings = [finding async for finding in scanner.subscriptions()]
        finally:
            report.stats = scanner.stats
            report.stripe_calls = self._reads.pacer.calls - calls
            report.rate_limited = self._reads.pacer.rate_limited - limited
        if fix:
            healer = Healer(self._store, self._config, self._processor, clock=self._clock)
            report.recovered = await healer.recover(report.missed)
            report.findings += await healer.recheck(list(scanner.watched.values()), int(self._clock()))
            report.healed = await healer.heal(report.findings)
        report.duration = time.perf_counter() - tick
        return report
