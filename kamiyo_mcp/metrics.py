"""Prometheus metrics: webhook deliveries and their processing time, active subscriptions, tool calls,
reconciliation with Stripe (drift found and healed by kind, runs, the last run's time and duration).

Each app gets its own registry from `create_metrics()` (nothing global, so two apps in one
process, as in tests, never share counters). Label values come from bounded sets: Stripe's
event types, our outcomes, tiers and tool names (the gate only reports tools we registered).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.http.endpoint import json_route
from billing.reconcile.drift import DriftKind
from billing.reconcile.report import Report
from billing.reconcile.schedule import JOB as RECONCILE_JOB
from billing.store import Store
from billing.tiers import TIER_NAMES
from kamiyo_mcp.http.operator_access import OperatorAccess

# Webhook processing is a few milliseconds; the upper buckets catch a store under contention.
SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SUBSCRIPTION_KINDS = ("stripe", "grant")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_deliveries = Counter(
            "kamiyo_webhook_deliveries", "Stripe webhook deliveries by event type and outcome "
            "(processed, ignored, duplicate, failed, or why an unverified one was refused).",
            ["event_type", "outcome"], registry=self.registry)
        self.webhook_seconds = Histogram(
            "kamiyo_webhook_processing_seconds", "Time from receiving a webhook to answering it.",
            ["event_type"], buckets=SECONDS_BUCKETS, registry=self.registry)
        self._webhook_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.active_subscriptions = Gauge(
            "kamiyo_active_subscriptions", "Subscriptions that grant access now, by kind and tier.",
            ["kind", "tier"], registry=self.registry)
        self.meter_events = Gauge(
            "kamiyo_meter_events", "Meter events of overage calls by status: pending (to send), sent, failed "
            "(refused by Stripe for good), voided and cancel_pending/cancelled (calls that failed in their tool).",
            ["status"], registry=self.registry)
        self.tool_calls = Counter(
            "kamiyo_tool_calls", "MCP tool calls by tool, tier and outcome (granted or the denial code).",
            ["tool", "tier", "outcome"], registry=self.registry)
        self._tool_call_children: dict[tuple[str, str, str], Counter] = {}
        self.reconcile_runs = Counter(
            "kamiyo_reconcile_runs", "Reconciliations with Stripe run by this process, by result "
            "(in_sync, healed, partly_healed, failed).", ["result"], registry=self.registry)
        self.reconcile_drift_found = Counter(
            "kamiyo_reconcile_drift_found", "Drift found by this process's reconciliations, by kind.", ["kind"],
            registry=self.registry)
        self.reconcile_drift_healed = Counter(
            "kamiyo_reconcile_drift_healed", "Drift healed by this process's reconciliations, by kind.", ["kind"],
            registry=self.registry)
        for kind in DriftKind:
            self.reconcile_drift_found.labels(kind.value)
            self.reconcile_drift_healed.labels(kind.value)
        self.reconcile_last_run = Gauge(
            "kamiyo_reconcile_last_run_timestamp_seconds", "When the last reconciliation (of any process) finished.",
            registry=self.registry)
        self.reconcile_last_duration = Gauge(
            "kamiyo_reconcile_last_run_duration_seconds", "How long the last reconciliation (of any process) took.",
            registry=self.registry)
        self.reconcile_last_drift = Gauge(
            "kamiyo_reconcile_last_run_drift", "Drift the last reconciliation found (-1: it failed).",
            registry=self.registry)

    def observe_webhook(self, event_type: str, outcome: str, seconds: float) -> None:
        """Count one webhook delivery (the view's `on_delivery` hook)."""
        key = (event_type, outcome)  # bounded: Stripe's event types x our outcomes
        children = self._webhook_children.get(key)
        if children is None:  # a label lookup per delivery costs more than the count itself
            children = self._webhook_children[key] = (self.webhook_deliveries.labels(event_type, outcome),
                                                      self.webhook_seconds.labels(event_type))
        children[0].inc()
        children[1].observe(seconds)

    def observe_tool_call(self, tool: str, tier: str, outcome: str) -> None:
        """Count one tool call as the gate decided it (tier "none" when the call was refused unknown)."""
        key = (tool, tier, outcome)  # bounded: registered tools x tiers x outcomes
        child = self._tool_call_children.get(key)
        if child is None:  # a label lookup per call costs more than the count itself
            child = self._tool_call_children[key] = self.tool_calls.labels(tool, tier, outcome)
        child.inc()

    def observe_reconcile(self, report: Report | None, error: BaseException | None, seconds: float) -> None:
        """Count one reconciliation run of this process (the schedule's `on_run` hook)."""
        if report is None:
            self.reconcile_runs.labels("failed").inc()
            return
        self.reconcile_runs.labels(report.result).inc()
        for kind, count in report.found_by_kind().items():
            self.reconcile_drift_found.labels(kind).inc(count)
        for kind, count in report.healed_by_kind().items():
            self.reconcile_drift_healed.labels(kind).inc(count)

    async def refresh(self, store: Store, now: int) -> None:
        """Read the subscription gauge and the last reconciliation from the store (on each scrape: the
        store is the truth, shared by every process)."""
        counts = await store.active_subscriptions_by_tier(now)
        for kind in SUBSCRIPTION_KINDS:
            for tier in TIER_NAMES:
                self.active_subscriptions.labels(kind, tier).set(counts.get((kind, tier), 0))
        for status, count in (await store.meter_event_counts()).items():
            self.meter_events.labels(status).set(count)
        job = await store.job_state(RECONCILE_JOB)
        if job is not None and job.last_finished_at is not None:
            self.reconcile_last_run.set(job.last_finished_at)
            result = _json_object(job.last_result)
            duration, drift = result.get("duration_seconds"), result.get("drift")
            self.reconcile_last_duration.set(duration if isinstance(duration, int | float) else 0)
            self.reconcile_last_drift.set(-1 if result.get("result") == "failed" or not isinstance(drift, int)
                                          else drift)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def create_metrics() -> Metrics:
    return Metrics()


def metrics_routes(metrics: Metrics, store: Callable[[], Store], *, access: OperatorAccess,
                   clock: Callable[[], float] = time.time) -> list[Route]:
    """`GET /metrics` in the Prometheus text format, for whom `access` lets in; `store` gives the open store."""

    async def scrape(request: Request) -> Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        await metrics.refresh(store(), int(clock()))
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [json_route("/metrics", scrape, {"GET", "HEAD"})]


def _json_object(text: str | None) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
