"""Apply a verified Stripe event exactly once: dedupe, apply and mark it in one transaction.

Shared by the webhook endpoint, `kamiyo-mcp events replay` and missed-event recovery (events
fetched from Stripe's API after it could not deliver them, `source="recovery"`), so each goes
through the very same path. Each event is applied and marked inside a savepoint of a write transaction; a handler
failure undoes that event's writes alone (no partial rows), the event is then recorded as `failed`
with its error and attempt count in a transaction of its own, and the caller answers 500 so
Stripe retries.

What is stored of an event has its Checkout Session ids replaced by their claim digests
(`claims.redact_session_ids`): a session id is the success page's claim secret, and the digest
still lets a replay find the claim.

Group commit: deliveries that arrive while a transaction is being written wait and are then
applied together, one savepoint each, in the next transaction, so that one fsync (the store
writes billing state with synchronous=FULL) serves many events; the next batch's leader may wait
a moment for the rest of its wave (`group_commit`). Nobody is answered before the transaction
holding their event has committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from billing.claims import redact_session_ids
from billing.config import BillingConfig
from billing.errors import NotFoundError
from billing.store import Store
from billing.store.billing_sql import DONE_STATUSES, WebhookTransaction
from billing.webhooks.context import Applied, EventContext, ignored
from billing.webhooks.event import StripeEvent, parse_event
from billing.webhooks.group_commit import GroupCommit
from billing.webhooks.registry import HandlerRegistry, default_registry

logger = logging.getLogger(__name__)

Status = Literal["processed", "ignored", "duplicate", "failed"]
MAX_BATCH = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    message: str
    event_id: str
    event_type: str
    mail_queued: bool = False  # applying it queued a mail (sent once the sender looks)


@dataclass(slots=True)
class _Pending:
    event: StripeEvent
    payload: str
    source: str = "webhook"
    outcome: Outcome | None = None
    error: Exception | None = field(default=None, repr=False)


class WebhookProcessor:
    def __init__(self, store: Store, config: BillingConfig, registry: HandlerRegistry | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._config = config
        self._registry = registry if registry is not None else default_registry()
        self._clock = clock
        self._queue: list[_Pending] = []
        self._writer = asyncio.Lock()
        self._group = GroupCommit(max_batch=MAX_BATCH)

    async def process(self, event: StripeEvent, payload: str, *, source: str = "webhook") -> Outcome:
        """Apply `event` (whose verified body is `payload`, delivered by `source`) unless it already was.

        A repeat is found inside the transaction (a repeat is rare; a read before it would cost every
        event a trip to the store).
        """
        item = _Pending(event, redact_session_ids(payload), source)
        self._queue.append(item)
        self._group.entered(len(self._queue))
        try:
            while item.outcome is None:
                async with self._writer:
                    if item.outcome is None:
                        await self._group.gather(len(self._queue))
                        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                        started = time.perf_counter()
                        await self._apply(batch)
                        self._group.committed(time.perf_counter() - started)
        finally:
            self._group.left()
        return item.outcome

    async def replay(self, event_id: str) -> Outcome:
        """Re-apply a stored event through `process` (a no-op for one already processed).

        Raises:
            NotFoundError: no stored event `event_id`.
        """
        record = await self.store.get_event(event_id)
        if record is None or record.payload is None:
            raise NotFoundError(f"no stored event {event_id}")
        return await self.process(parse_event(record.payload), record.payload, source=record.source)

    async def replay_failed(self) -> list[Outcome]:
        """Replay every event whose last attempt failed, oldest first."""
        failed = await self.store.list_events(status="failed", limit=10_000)
        return [await self.replay(record.event_id) for record in reversed(failed)]

    async def _apply(self, batch: list[_Pending]) -> None:
        """One transaction for `batch`, one savepoint per event; failures are recorded after it commits."""
        try:
            async with self.store.webhook_transaction(int(self._clock())) as tx:
                for item in batch:
                    try:
                        async with tx.savepoint():
                            item.outcome = await self._apply_one(tx, item)
                    except Exception as exc:  # the top of one event's processing: logged, recorded, answered 500
                        logger.exception("stripe event %s (%s) failed", item.event.id, item.event.type)
                        item.error, item.outcome = exc, None
        except Exception as exc:  # the transaction itself failed: nothing of the batch was committed
            logger.exception("the webhook transaction failed; %d event(s) left for Stripe to retry", len(batch))
            for item in batch:
                item.error, item.outcome = item.error or exc, None
        except BaseException:  # cancelled: answer everyone waiting on this batch, then stop
            for item in batch:
                item.outcome = _failed(item.event, "the server stopped while applying the event")
            raise
        for item in batch:
            if item.outcome is None:
                await self._record_failure(item)
                item.outcome = _failed(item.event, f"applying the event failed ({type(item.error).__name__}); "
                                                   "it will be retried")

    async def _apply_one(self, tx: WebhookTransaction, item: _Pending) -> Outcome:
        event = item.event
        if await tx.event_status(event.id) in DONE_STATUSES:
            return _duplicate(event)
        handler = self._registry.handler_for(event.type)
        tx.mail_queued = False  # the transaction holds a batch of events: this one's alone
        if handler is None:
            applied: Applied = ignored(f"event type {event.type} is not handled")
        else:
            applied = await handler(EventContext(event, tx, self._config))
        await tx.mark_event(event_id=event.id, event_type=event.type, created=event.created,
                            livemode=event.livemode, payload=item.payload, status=applied.status,
                            message=redact_session_ids(applied.message), source=item.source)
        return Outcome(applied.status, applied.message, event.id, event.type, tx.mail_queued)

    async def _record_failure(self, item: _Pending) -> None:
        event, error = item.event, item.error
        try:
            await self.store.record_event_failure(
                event_id=event.id, event_type=event.type, created=event.created, livemode=event.livemode,
                payload=item.payload, error=redact_session_ids(f"{type(error).__name__}: {error}"),
                now=int(self._clock()), source=item.source)
        except Exception:  # the store itself is failing: Stripe's retry is the record
            logger.exception("could not record the failure of stripe event %s", event.id)


def _duplicate(event: StripeEvent) -> Outcome:
    return Outcome("duplicate", "already processed", event.id, event.type)


def _failed(event: StripeEvent, message: str) -> Outcome:
    return Outcome("failed", message, event.id, event.type)
