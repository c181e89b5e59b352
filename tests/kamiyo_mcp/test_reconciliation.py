"""Reconciliation as `serve` wires and shows it: on by default every hour once Stripe is configured, off with
KAMIYO_RECONCILE_INTERVAL=0, and a failed run counted on /metrics and shown on /healthz."""

from __future__ import annotations

import json
from pathlib import Path

from billing.reconcile.schedule import JOB, failure_summary
from billing.stripe_gateway import StripeGatewayError
from kamiyo_mcp.metrics import create_metrics
from kamiyo_mcp.reconciliation import ReconcileWiring
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.billing.reconcile.reconcile_support import KEY, PERSONAL
from tests.billing.webhooks.webhook_support import SECRET
from tests.kamiyo_mcp.test_reconcile_serve import metric
from tests.support import base_env, free_port

NOW = 1_900_000_000


def stripe_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Stripe configured (key, webhook secret, a price); nothing listens at its address."""
    return base_env(tmp_path / "kamiyo.db", STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                    STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_PRICE_MCP_PERSONAL=PERSONAL, **extra)


async def test_with_stripe_configured_serve_reconciles_every_hour_by_default(tmp_path: Path) -> None:
    async with Runtime(load_settings(stripe_env(tmp_path))).opened() as runtime:
        wiring = ReconcileWiring(runtime)
        assert await wiring.health() == {"enabled": True, "interval_seconds": 3600, "running": False,
                                         "last_run": None}
        async with wiring.running() as schedule:
            assert schedule is not None and wiring.schedule is schedule  # its first run waits a few seconds


async def test_an_interval_of_0_turns_reconciliation_off_even_with_stripe_configured(tmp_path: Path) -> None:
    async with Runtime(load_settings(stripe_env(tmp_path, KAMIYO_RECONCILE_INTERVAL="0"))).opened() as runtime:
        wiring = ReconcileWiring(runtime)
        async with wiring.running() as schedule:
            assert schedule is None and wiring.schedule is None
        assert await wiring.health() == {"enabled": False}


async def test_a_failed_run_is_counted_on_metrics_and_shown_on_health(tmp_path: Path) -> None:
    async with Runtime(load_settings(stripe_env(tmp_path))).opened() as runtime:
        store = runtime.store
        error = StripeGatewayError("Stripe could not be reached")
        assert await store.start_job(JOB, "serve-1", now=NOW, lease_seconds=300)
        await store.finish_job(JOB, "serve-1", now=NOW + 2,
                               result=json.dumps(failure_summary(error, 2.0, NOW + 2)))
        metrics = create_metrics()
        metrics.observe_reconcile(None, error, 2.0)
        await metrics.refresh(store, NOW + 3)
        scraped = metrics.render().decode()
        health = await ReconcileWiring(runtime).health()

    assert metric(scraped, "kamiyo_reconcile_runs_total", result="failed") == 1
    assert metric(scraped, "kamiyo_reconcile_drift_found_total", kind="missing_here") == 0
    assert metric(scraped, "kamiyo_reconcile_last_run_drift") == -1
    assert metric(scraped, "kamiyo_reconcile_last_run_timestamp_seconds") == NOW + 2
    assert metric(scraped, "kamiyo_reconcile_last_run_duration_seconds") == 2.0
    assert health["last_run"]["result"] == "failed" and health["last_run"]["error"] == "Stripe could not be reached"
    assert health["running"] is False
