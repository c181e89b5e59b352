"""Read Stripe a page at a time and compare each page with the store: the findings of a run.

Nothing here writes. Memory stays flat in the number of subscriptions: one page of Stripe objects
and its stored rows at a time, plus a 64-bit digest per subscription seen (to find the stored
subscriptions that no listing returned; some 50 bytes each in a set) and the findings (drift only).

    1. GET /v1/subscriptions?price=P&status=all, per configured price, customers expanded: each page
       is compared with its stored rows (one statement per page).
    2. Stored Stripe subscriptions that no listing returned (moved to another price, or unknown to
       Stripe) and that have not ended here are read one by one: GET /v1/subscriptions/{id}.
    3. GET /v1/events?delivery_success=false of the types we handle, the last 30 days: events Stripe
       could not deliver that the store has not applied. Read first: the subscriptions (or customers)
       they are about are *watched*, i.e. kept even when they agree now, because applying such an
       event later can undo a newer state of the same second (Stripe's seconds do not order them).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from billing.config import BillingConfig
from billing.reconcile.drift import DriftKind, Finding, compare, unknown_to_stripe
from billing.store import Store
from billing.store.billing_sql import DONE_STATUSES
from billing.stripe_reads import StripePage, StripeReads
from billing.subscription_state import (
    TERMINAL_STATUSES,
    parse_checkout_session,
    parse_customer,
    parse_invoice,
    parse_subscription,
)

logger = logging.getLogger(__name__)

EVENTS_WINDOW_SECONDS = 30 * 24 * 3600  # how far back Stripe lists events


@dataclass(frozen=True, slots=True)
class MissedEvent:
    """An event Stripe has not delivered, that the store has not applied (`stored_status`: None or failed)."""

    event_id: str
    type: str
    created: int
    payload: dict[str, Any] = field(repr=False)
    stored_status: str | None
    subscription_id: str | None = None  # what the event is about, to watch it
    customer_id: str | None = None

    @property
    def kinds(self) -> tuple[DriftKind, ...]:
        return (DriftKind.MISSED_EVENT,)


class SeenIds:
    """Which subscription ids a listing returned, kept as 64-bit digests (collisions: ~n²/2⁶⁵)."""

    def __init__(self) -> None:
        self._digests: set[int] = set()

    def add(self, subscription_id: str) -> bool:
        """Remember the id; False when it was already seen."""
        digest = _digest(subscription_id)
        if digest in self._digests:
            return False
        self._digests.add(digest)
        return True

    def __contains__(self, subscription_id: object) -> bool:
        return isinstance(subscription_id, str) and _digest(subscription_id) in self._digests

    def __len__(self) -> int:
        return len(self._digests)


@dataclass(slots=True)
class ScanStats:
    pages: int = 0
    stripe_subscriptions: int = 0
    stored_checked: int = 0
    events_listed: int = 0


class Scanner:
    """One pass over Stripe and the store; `since` limits it to subscriptions created from then on."""

    def __init__(self, reads: StripeReads, store: Store, config: BillingConfig, *, now: Callable[[], int],
                 since: int | None, event_types: Sequence[str]) -> None:
        self._reads = reads
        self._store = store
        self._config = config
        self._now = now
        self._since = since
        self._event_types = tuple(event_types)
        self.stats = ScanStats()
        self._seen = SeenIds()
        # Subscriptions that agree with Stripe but that a missed event is about: kept to recheck after it.
        self.watched: dict[str, Finding] = {}
        self._watch_subscriptions: set[str] = set()
        self._watch_customers: set[str] = set()

    async def subscriptions(self) -> AsyncIterator[Finding]:
        """The drifted subscriptions: first those Stripe lists for our prices, then the stored rest.

        Raises:
            StripeGatewayError: Stripe refused a read or could not be reached.
        """
        prices = sorted(set(self._config.prices.values()))
        for price in prices:
            async for page in self._listing(price):
                for finding in await self._compare_page(page):
                    yield finding
        async for finding in self._unlisted():
            yield finding

    async def missed_events(self) -> list[MissedEvent]:
        """Events of our types that Stripe failed to deliver and the store has not applied, oldest first.

        Raises:
            StripeGatewayError: as `subscriptions`.
        """
        window_start = self._now() - EVENTS_WINDOW_SECONDS
        created_gte = max(window_start, self._since) if self._since is not None else window_start
        missed: list[MissedEvent] = []
        after: str | None = None
        while True:
            page = await self._reads.list_events(types=self._event_types, created_gte=created_gte,
                                                   delivery_success=False, starting_after=after)
            self.stats.pages += 1
            self.stats.events_listed += len(page.data)
            statuses = await self._store.event_statuses([e["id"] for e in page.data if isinstance(e.get("id"), str)])
            for event in page.data:
                event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
                if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(created, int):
                    continue
                status = statuses.get(event_id)
                if status not in DONE_STATUSES:
                    subscription_id, customer_id = self._subjects(event_type, event)
                    missed.append(MissedEvent(event_id, event_type, created, event, status, subscription_id,
                                              customer_id))
                    self._watch_subscriptions.update([subscription_id] if subscription_id else [])
                    self._watch_customers.update([customer_id] if customer_id else [])
            if not page.has_more or not page.data:
                break
            after = page.data[-1]["id"]
        missed.sort(key=lambda m: (m.created, m.event_id))
        return missed

    async def _listing(self, price: str | None) -> AsyncIterator[StripePage]:
        after: str | None = None
        while True:
            page = await self._reads.list_subscriptions(price=price, created_gte=self._since, starting_after=after)
            self.stats.pages += 1
            yield page
            if not page.has_more or not page.data:
                return
            after = page.data[-1]["id"]

    async def _compare_page(self, page: StripePage) -> list[Finding]:
        fresh = [obj for obj in page.data if isinstance(obj.get("id"), str) and self._seen.add(obj["id"])]
        self.stats.stripe_subscriptions += len(fresh)
        stored = await self._store.stored_subscriptions([obj["id"] for obj in fresh])
        findings = []
        now = self._now()
        for obj in fresh:
            try:
                snapshot = parse_subscription(obj, self._config)
            except ValueError as exc:
                logger.warning("reconcile: Stripe listed an unusable subscription %s: %s", obj["id"], exc)
                continue
            customer = parse_customer(obj.get("customer"))
            row = stored.get(snapshot.subscription_id)
            finding = Finding.of(obj, compare(snapshot, customer, row, now), row, page.observed_at, snapshot,
                                 customer)
            if finding.kinds:
                findings.append(finding)
            else:
                self._watch(finding)
        return findings

    async def _unlisted(self) -> AsyncIterator[Finding]:
        after: str | None = None
        while True:
            batch = await self._store.stored_subscription_page(after=after, created_gte=self._since)
            if not batch:
                return
            after = batch[-1].row.subscription_id
            for stored in batch:
                self.stats.stored_checked += 1
                # Listed already, or ended here: Stripe's canceled is final, so nothing about an ended
                # subscription that no listing returned can give access back.
                if stored.row.subscription_id in self._seen or stored.row.status in TERMINAL_STATUSES:
                    continue
                read = await self._reads.read_subscription(stored.row.subscription_id)
                if read.object is None:
                    finding = unknown_to_stripe(stored, read.observed_at)
                    if finding is not None:
                        yield finding
                    continue
                try:
                    snapshot = parse_subscription(read.object, self._config)
                except ValueError as exc:
                    logger.warning("reconcile: Stripe returned an unusable subscription %s: %s",
                                   stored.row.subscription_id, exc)
                    continue
                customer = parse_customer(read.object.get("customer"))
                finding = Finding.of(read.object, compare(snapshot, customer, stored, self._now()), stored,
                                     read.observed_at, snapshot, customer)
                if finding.kinds:
                    yield finding
                else:
                    self._watch(finding)

    def _watch(self, agreeing: Finding) -> None:
        snapshot = agreeing.snapshot
        if snapshot is not None and (snapshot.subscription_id in self._watch_subscriptions
                                     or snapshot.customer_id in self._watch_customers):
            self.watched[snapshot.subscription_id] = agreeing

    def _subjects(self, event_type: str, event: dict[str, Any]) -> tuple[str | None, str | None]:
        """The subscription (or, for a customer event, the customer) an event is about."""
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            return None, None
        try:
            if event_type.startswith("customer.subscription."):
                return parse_subscription(obj, self._config).subscription_id, None
            if event_type.startswith("checkout.session."):
                return parse_checkout_session(obj, self._config).subscription_id, None
            if event_type.startswith("invoice."):
                return parse_invoice(obj, self._config).subscription_id, None
        except ValueError:
            return None, None
        customer_id = obj.get("id")
        return None, customer_id if event_type.startswith("customer.") and isinstance(customer_id, str) else None


def _digest(subscription_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(subscription_id.encode(), digest_size=8).digest(), "big")
