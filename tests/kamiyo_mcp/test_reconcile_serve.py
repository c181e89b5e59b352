"""`kamiyo-mcp serve` reconciles with Stripe by itself, shortly after start and then on its interval,
and shows it: the last run on /healthz, drift found and healed by kind on /metrics."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.billing.reconcile.reconcile_support import TEAM, FakeClock, environment, fresh_fake_stripe
from tests.fakes.stripe_fake import FakeStripe
from tests.support import ServerProcess

WAIT_SECONDS = 30


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fresh_fake_stripe(FakeClock(time.time())) as fake:
        yield fake


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not exported")


async def test_serve_heals_drift_on_its_schedule_and_reports_it(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    mark = fake.lifecycle.event_count()
    sub = fake.lifecycle.buy("ann@example.com", TEAM, tier="team")
    for event in fake.lifecycle.events_since(mark):
        fake.lifecycle.mark_delivery(event["id"], True)  # Stripe believes it delivered them; we never saw them
    assert isinstance(fake.clock, FakeClock)
    fake.clock.advance(2)
    server = server_factory(environment(tmp_path, fake, KAMIYO_RECONCILE_INTERVAL="1")).start()

    async with httpx.AsyncClient(base_url=server.url) as client:
        with anyio.fail_after(WAIT_SECONDS):
            while True:
                health = (await client.get("/healthz")).json()
                if (health.get("reconciliation") or {}).get("last_run"):
                    break
                await anyio.sleep(0.1)  # polling the server's schedule, bounded by fail_after
        scraped = (await client.get("/metrics")).text

    reconciliation = health["reconciliation"]
    assert health["status"] == "ok" and reconciliation["enabled"] is True
    assert reconciliation["interval_seconds"] == 1
    assert reconciliation["last_run"]["result"] in ("healed", "in_sync")  # later runs find nothing left
    assert reconciliation["last_run"]["fix"] is True
    with sqlite3.connect(tmp_path / "kamiyo.db") as db:
        assert db.execute("SELECT status, tier FROM subscriptions WHERE subscription_id = ?",
                          (sub["id"],)).fetchall() == [("active", "team")]
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE subscription_id = ?", (sub["id"],)).fetchone() == (1,)
    assert metric(scraped, "kamiyo_reconcile_drift_found_total", kind="missing_here") == 1
    assert metric(scraped, "kamiyo_reconcile_drift_healed_total", kind="missing_here") == 1
    assert metric(scraped, "kamiyo_reconcile_drift_found_total", kind="tier") == 0
    assert metric(scraped, "kamiyo_reconcile_runs_total", result="healed") == 1
    assert metric(scraped, "kamiyo_reconcile_last_run_timestamp_seconds") > 0
    assert metric(scraped, "kamiyo_reconcile_last_run_duration_seconds") >= 0


async def test_health_says_reconciliation_is_off_without_stripe(
        tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    from tests.support import base_env

    server = server_factory(base_env(tmp_path / "kamiyo.db")).start()
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = (await client.get("/healthz")).json()
    assert health["reconciliation"] == {"enabled": False}
