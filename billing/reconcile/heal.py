"""Heal what a scan found, through the webhooks' own path: nothing here decides state by itself.

A drifted subscription goes through `apply_subscription` (the same transition, "newer wins" rule,
effects and audit as a subscription event) as a *read* dated when Stripe was read, in a write
transaction with a savepoint per subscription, like the webhook processor's batches. A missed event
goes through the webhook processor itself (`source="recovery"`): stored, deduplicated, applied once.
Healing never calls Stripe: everything it needs was read by the scan.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from billing.config import BillingConfig
from billing.reconcile.drift import DriftKind, Finding, agrees, compare
from billing.reconcile.scan import MissedEvent
from billing.store import Store
from billing.store.billing_sql import WebhookTransaction
from billing.subscription_apply import apply_subscription
from billing.subscription_state import SubscriptionSnapshot
from billing.webhooks.event import MalformedEventError, parse_event
from billing.webhooks.processor import Outcome, WebhookProcessor

logger = logging.getLogger(__name__)

ACTOR = "reconcile"
ACTION = "subscription.reconciled"
BATCH = 64

HealStatus = Literal["healed", "kept_newer", "needs_operator", "failed"]


@dataclass(frozen=True, slots=True)
class HealResult:
    subscription_id: str
    kinds: tuple[DriftKind, ...]
    status: HealStatus
    message: str


class Healer:
    def __init__(self, store: Store, config: BillingConfig, processor: WebhookProcessor, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._config = config
        self._processor = processor
        self._clock = clock

    async def heal(self, findings: Sequence[Finding]) -> list[HealResult]:
        """Apply each finding's Stripe state, `BATCH` per transaction, one savepoint each."""
        results: list[HealResult] = []
        for start in range(0, len(findings), BATCH):
            batch = findings[start:start + BATCH]
            async with self._store.webhook_transaction(int(self._clock())) as tx:
                for finding in batch:
                    results.append(await self._heal_in_savepoint(tx, finding))
        return results

    async def recover(self, missed: Sequence[MissedEvent]) -> list[Outcome]:
        """Apply the missed events, oldest first, exactly as if Stripe had delivered them."""
        outcomes = []
        for event in missed:
            payload = json.dumps(event.payload, separators=(",", ":"))
            try:
                parsed = parse_event(payload)
            except MalformedEventError as exc:
                outcomes.append(Outcome("failed", f"Stripe listed a malformed event: {exc}", event.event_id,
                                        event.type))
                continue
            outcomes.append(await self._processor.process(parsed, payload, source="recovery"))
        return outcomes

    async def recheck(self, watched: Sequence[Finding], now: int) -> list[Finding]:
        """The watched subscriptions that no longer agree with what Stripe said (a recovered event of the
        same second as a newer state can undo it): new findings, healed like the others."""
        found = []
        for start in range(0, len(watched), BATCH):
            batch = watched[start:start + BATCH]
            stored = await self._store.stored_subscriptions([w.subscription_id for w in batch])
            for agreed in batch:
                assert agreed.snapshot is not None
                now_stored = stored.get(agreed.subscription_id)
                kinds = compare(agreed.snapshot, agreed.customer, now_stored, now)
                if kinds:
                    found.append(dataclasses.replace(agreed, kinds=kinds, stored=now_stored))
        return found

    async def _heal_in_savepoint(self, tx: WebhookTransaction, finding: Finding) -> HealResult:
        if not finding.healable:
            return HealResult(finding.subscription_id, finding.kinds, "needs_operator",
                              "the subscription's price is not one of the configured STRIPE_PRICE_MCP_* prices; "
                              "configure it or move the subscription back")
        try:
            async with tx.savepoint():
                return await self._heal_one(tx, finding)
        except Exception as exc:  # the top of one subscription's healing: logged, reported, the others go on
            logger.exception("reconcile: healing subscription %s failed", finding.subscription_id)
            return HealResult(finding.subscription_id, finding.kinds, "failed", f"{type(exc).__name__}: {exc}")

    async def _heal_one(self, tx: WebhookTransaction, finding: Finding) -> HealResult:
        snapshot = finding.snapshot
        if snapshot is None:  # unknown to Stripe: nobody pays for it, so it ends
            assert finding.stored is not None
            row = finding.stored.row
            snapshot = SubscriptionSnapshot(row.subscription_id, finding.stored.stripe_customer_id, "canceled",
                                            None, None, row.current_period_end, False)
        applied = await apply_subscription(
            tx, self._config, snapshot, finding.customer, stripe_object=finding.stripe_object or {},
            observed_at=finding.observed_at, read=True, actor=ACTOR, action=ACTION,
            reference=f"drift={','.join(finding.kinds)} read_at={finding.observed_at}")
        if applied.outcome == "written":
            return HealResult(finding.subscription_id, finding.kinds, "healed", applied.message)
        if applied.outcome == "not_ours":
            return HealResult(finding.subscription_id, finding.kinds, "needs_operator", applied.message)
        # The store has a change newer than the read (an event applied meanwhile): it is kept. If it
        # brought the store to what Stripe said, the drift is gone all the same.
        now_stored = await tx.subscription(finding.subscription_id)
        if now_stored is not None and agrees(snapshot, now_stored):
            return HealResult(finding.subscription_id, finding.kinds, "healed",
                              "already healed by a newer event: " + applied.message)
        return HealResult(finding.subscription_id, finding.kinds, "kept_newer",
                          applied.message + "; the store's newer state is kept (the next run checks again)")
