"""What a reconciliation run found and did: counts for metrics and health, JSON and text for operators.

Missed events are shown by id, type and time only: a payload can hold a Checkout Session id, which
is a claim secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from billing.reconcile.drift import DriftKind, Finding
from billing.reconcile.heal import HealResult
from billing.reconcile.scan import MissedEvent, ScanStats
from billing.store.records import StoredSubscription
from billing.webhooks.processor import Outcome

APPLIED = ("processed", "ignored", "duplicate")


@dataclass(slots=True)
class Report:
    fix: bool
    since: int | None
    started_at: float
    duration: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    missed: list[MissedEvent] = field(default_factory=list)
    healed: list[HealResult] = field(default_factory=list)
    recovered: list[Outcome] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    stripe_calls: int = 0
    rate_limited: int = 0

    @property
    def drift(self) -> int:
        """Drifted subscriptions plus missed events."""
        return len(self.findings) + len(self.missed)

    @property
    def healed_count(self) -> int:
        return sum(r.status == "healed" for r in self.healed) + sum(o.status in APPLIED for o in self.recovered)

    @property
    def result(self) -> str:
        """in_sync, drift (reported only), healed, or partly_healed."""
        if not self.drift:
            return "in_sync"
        if not self.fix:
            return "drift"
        return "healed" if self.healed_count == self.drift else "partly_healed"

    def found_by_kind(self) -> dict[str, int]:
        counts: Counter[str] = Counter(kind.value for finding in self.findings for kind in finding.kinds)
        if self.missed:
            counts[DriftKind.MISSED_EVENT.value] += len(self.missed)
        return dict(sorted(counts.items()))

    def healed_by_kind(self) -> dict[str, int]:
        counts: Counter[str] = Counter(kind.value for r in self.healed if r.status == "healed" for kind in r.kinds)
        recovered = sum(o.status in APPLIED for o in self.recovered)
        if recovered:
            counts[DriftKind.MISSED_EVENT.value] += recovered
        return dict(sorted(counts.items()))

    def summary(self) -> dict[str, Any]:
        """The counts (the job's stored result, /healthz, the head of --json)."""
        return {
            "result": self.result,
            "fix": self.fix,
            "started_at": iso(int(self.started_at)),
            "duration_seconds": round(self.duration, 3),
            "drift": self.drift,
            "healed": self.healed_count,
            "found_by_kind": self.found_by_kind(),
            "healed_by_kind": self.healed_by_kind(),
            "stripe_subscriptions": self.stats.stripe_subscriptions,
            "stripe_calls": self.stripe_calls,
            "rate_limited": self.rate_limited,
        }

    def write_json(self, out: TextIO) -> None:
        """Everything, as one JSON object: the counts, then each drifted subscription with the Stripe object
        and the store row. Written a subscription at a time (Stripe's objects as their stored JSON), so a
        report of thousands of drifted subscriptions needs no memory beyond the findings themselves."""
        heals = {r.subscription_id: r for r in self.healed}
        outcomes = {o.event_id: o for o in self.recovered}
        head = json.dumps({**self.summary(), "since": iso(self.since)}, indent=2)
        out.write(head[:-2] + ',\n  "subscriptions": [')
        for index, finding in enumerate(self.findings):
            shown = json.dumps(_finding_json(finding, heals.get(finding.subscription_id)))
            out.write(("," if index else "") + "\n    " + shown[:-1] + f', "stripe": {finding.stripe_json or "null"}}}')
        missed = [_missed_json(m, outcomes.get(m.event_id)) for m in self.missed]
        out.write(("\n  " if self.findings else "") + '],\n  "missed_events": '
                  + json.dumps(missed, indent=2).replace("\n", "\n  ") + "\n}\n")

    def lines(self) -> list[str]:
        """A human summary: one line for the run, one per drifted subscription or missed event."""
        head = f"{self.drift} drift(s): {len(self.findings)} subscription(s), {len(self.missed)} missed event(s)"
        if self.fix:
            head += f"; {self.healed_count} healed"
        out = [f"{head} ({self.stats.stripe_subscriptions} Stripe subscriptions, {self.stripe_calls} Stripe calls, "
               f"{self.duration:.1f} s)"]
        heals = {r.subscription_id: r for r in self.healed}
        for finding in self.findings:
            line = f"{finding.subscription_id}  {','.join(finding.kinds)}  stripe: {_stripe_text(finding)}  " \
                   f"store: {_store_text(finding.stored)}"
            heal = heals.get(finding.subscription_id)
            out.append(line + (f"  -> {heal.status}: {heal.message}" if heal is not None else ""))
        outcomes = {o.event_id: o for o in self.recovered}
        for missed in self.missed:
            outcome = outcomes.get(missed.event_id)
            line = f"{missed.event_id}  missed_event  {missed.type} at {iso(missed.created)}" \
                   f"  store: {missed.stored_status or 'never received'}"
            out.append(line + (f"  -> {outcome.status}: {outcome.message}" if outcome is not None else ""))
        return out


def iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_json(stored: StoredSubscription | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {**dataclasses.asdict(stored.row), "email": stored.email, "stripe_customer_id": stored.stripe_customer_id,
            "created_at": stored.created_at}


def _finding_json(finding: Finding, heal: HealResult | None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "subscription_id": finding.subscription_id,
        "kinds": [k.value for k in finding.kinds],
        "observed_at": iso(finding.observed_at),
        "store": stored_json(finding.stored),
    }
    if heal is not None:
        shown["heal"] = {"status": heal.status, "message": heal.message}
    return shown


def _missed_json(missed: MissedEvent, outcome: Outcome | None) -> dict[str, Any]:
    shown: dict[str, Any] = {"event_id": missed.event_id, "type": missed.type, "created": iso(missed.created),
                             "stored_status": missed.stored_status}
    if outcome is not None:
        shown["recovery"] = {"status": outcome.status, "message": outcome.message}
    return shown


def _stripe_text(finding: Finding) -> str:
    snap = finding.snapshot
    if snap is None:
        return "(unknown to Stripe)"
    email = finding.customer.email if finding.customer is not None else None
    text = (f"{snap.status} {snap.tier or '(price not ours)'} period_end={iso(snap.current_period_end)}"
            f" cancel_at_period_end={'yes' if snap.cancel_at_period_end else 'no'}")
    return text + (f" email={email}" if email else "")


def _store_text(stored: StoredSubscription | None) -> str:
    if stored is None:
        return "(missing)"
    row = stored.row
    return (f"{row.status} {row.tier} period_end={iso(row.current_period_end)}"
            f" cancel_at_period_end={'yes' if row.cancel_at_period_end else 'no'} email={stored.email}")
