"""The meter-event sender: delivers the overage calls the store holds to Stripe, each exactly once.

    sender = MeterEventSender(store, gateway, config)
    async with sender.running():         # a background task, in the app's lifespan
        ...
    handled = await sender.send_due()    # or one pass, from a test or a command

Exactly once, across crashes: a row is written with its call (never lost), and its identifier (the
call's id) is both Stripe's meter-event `identifier` and the request's idempotency key, so a resend
after a crash or a lost answer is recognised by Stripe (an idempotent replay, or "an event already
exists with identifier ...", both taken as delivered) and never billed twice.

Each pass takes a batch of due rows under a lease (counting the attempt and moving its next time
past the request), posts them concurrently at no more than `meter_events_per_second` (Stripe takes
1,000/s in live mode), and records the whole batch's outcomes in one transaction. A transient
failure (network, 429, 5xx) keeps the row with a doubling, jittered delay; a 429 also pauses the
whole sender. A row Stripe refuses for good is kept as `failed` with the error. A call that failed
inside its tool after its event was sent is cancelled with a meter event adjustment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

from billing.background import in_background, sleep_until_woken
from billing.config import BillingConfig
from billing.store import Store
from billing.store.meter_sql import MeterEventRow, MeterOutcomes
from billing.stripe_gateway import StripeGateway, StripeGatewayError

logger = logging.getLogger(__name__)

BATCH = 100
CONCURRENCY = 16
POLL_SECONDS = 1.0
BASE_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 3600.0
REQUEST_TIMEOUT_SECONDS = 20
MAX_AGE_SECONDS = 35 * 24 * 3600 - 3600  # Stripe refuses timestamps older than 35 days
DUPLICATE = "already exists with identifier"


def backoff(attempts: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds before attempt `attempts + 1`: doubling from `base`, capped, with ±25 % jitter."""
    return min(base * 2.0 ** max(attempts - 1, 0), cap) * (0.75 + 0.5 * rand())


class MeterEventSender:
    def __init__(self, store: Store, gateway: Callable[[], StripeGateway | None], config: BillingConfig, *,
                 clock: Callable[[], float] = time.time, poll_seconds: float = POLL_SECONDS,
                 base_delay: float = BASE_DELAY_SECONDS, max_delay: float = MAX_DELAY_SECONDS,
                 batch: int = BATCH, concurrency: int = CONCURRENCY, rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self._gateway = gateway
        self._event_name = config.meter_event_name or ""
        self._enabled = config.overage_enabled
        self._interval = 1.0 / config.meter_events_per_second
        self._clock = clock
        self._poll = poll_seconds
        self._base = base_delay
        self._cap = max_delay
        self._batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self._rand = rand
        self._next_slot = 0.0  # monotonic time of the next request slot (pacing)
        self._paused_until = 0.0  # clock time until which Stripe asked us to slow down (429)
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Look for due events now rather than at the next poll."""
        self._wake.set()

    async def send_due(self) -> int:
        """One pass over the events due now; returns how many were delivered or cancelled."""
        gateway = self._gateway()
        if gateway is None:
            return 0
        now = int(self._clock())
        rows = await self.store.take_due_meter_events(now, lease_until=now + REQUEST_TIMEOUT_SECONDS + 10,
                                                      limit=self._batch)
        if not rows:
            return 0
        outcomes = MeterOutcomes([], [], [], [], [])
        await asyncio.gather(*(self._deliver(gateway, row, outcomes) for row in rows))
        await self.store.record_meter_outcomes(outcomes, now=int(self._clock()))
        if outcomes.failed or outcomes.uncancellable:
            logger.error("meter events: %d refused by Stripe for good, %d could not be cancelled (see "
                         "'kamiyo-mcp usage')", len(outcomes.failed), len(outcomes.uncancellable))
        return len(outcomes.sent) + len(outcomes.cancelled)

    async def run(self) -> None:
        """Send due events until stopped: at once while a full batch was due, else at the next due time."""
        while not self._stopping:
            try:
                handled = await self.send_due()
                due = None if handled >= self._batch else await self.store.next_meter_event_due()
            except Exception:  # the top of a task: logged, and the loop goes on
                logger.exception("meter events: a sending pass failed")
                handled, due = 0, None
            if handled >= self._batch and not self._stopping:
                continue
            wait = self._poll if due is None else min(self._poll, max(due - self._clock(), 0.0))
            await sleep_until_woken(self._wake, max(wait, self._paused_until - self._clock()))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MeterEventSender]:
        """Run the sender in the background for the block (not at all when overage is not configured)."""
        if not self._enabled:
            yield self
            return
        async with in_background(self.run, self._stop, "kamiyo-meter-event-sender"):
            yield self

    def _stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _deliver(self, gateway: StripeGateway, row: MeterEventRow, outcomes: MeterOutcomes) -> None:
        cancel = row.status == "cancel_pending"
        if not cancel and (row.stripe_customer_id is None or row.occurred_at < self._clock() - MAX_AGE_SECONDS):
            outcomes.failed.append((row.identifier, "no Stripe customer" if row.stripe_customer_id is None
                                    else "older than Stripe accepts (35 days)"))
            return
        async with self._limit:
            if self._paused_until > self._clock() + 1:
                # Stripe asked us to slow down: leave the rest of the batch for after the pause.
                outcomes.retry.append((row.identifier, "waiting: Stripe rate limit (429)", int(self._paused_until) + 1))
                return
            await self._pace()
            try:
                if cancel:
                    await gateway.cancel_meter_event(self._event_name, row.identifier)
                else:
                    assert row.stripe_customer_id is not None
                    await gateway.create_meter_event(self._event_name, customer=row.stripe_customer_id,
                                                     identifier=row.identifier, timestamp=row.occurred_at)
            except StripeGatewayError as exc:
                self._failed(row, exc, outcomes, cancel=cancel)
                return
        (outcomes.cancelled if cancel else outcomes.sent).append(row.identifier)

    def _failed(self, row: MeterEventRow, exc: StripeGatewayError, outcomes: MeterOutcomes, *, cancel: bool) -> None:
        error = f"Stripe {exc.http_status or 'unreachable'}: {exc.message}"
        if not cancel and exc.http_status == 400 and DUPLICATE in exc.message:
            outcomes.sent.append(row.identifier)  # Stripe has it already: delivered, never twice
        elif exc.transient:
            delay = backoff(row.attempts, base=self._base, cap=self._cap, rand=self._rand)
            if exc.http_status == 429:
                self._paused_until = max(self._paused_until, self._clock() + delay)
            outcomes.retry.append((row.identifier, error, int(self._clock() + delay) + 1))
            logger.warning("meter events: %s not %s (attempt %d), retrying in %.0f s: %s", row.identifier,
                           "cancelled" if cancel else "sent", row.attempts, delay, error)
        elif cancel:
            outcomes.uncancellable.append((row.identifier, error))
        else:
            outcomes.failed.append((row.identifier, error))

    async def _pace(self) -> None:
        """Wait for this request's slot: at most one per interval, and none while Stripe asked us to slow down."""
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
