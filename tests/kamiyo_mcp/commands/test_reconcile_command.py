"""`kamiyo-mcp reconcile` as an operator runs it (a real process) against the fake Stripe over HTTP:
exit 0 in sync, 3 drift, 1 when Stripe fails (one line, nothing applied), 2 bad usage."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from billing.store import open_store
from tests.billing.reconcile.reconcile_support import (
    KEY,
    PERSONAL,
    TEAM,
    FakeClock,
    backend_url,
    environment,
    fresh_fake_stripe,
)
from tests.fakes.stripe_fake import FakeStripe
from tests.support import REPO, cli, free_port


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fresh_fake_stripe(FakeClock(time.time())) as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    return environment(tmp_path, fake)


def bought_unseen(fake: FakeStripe, email: str, price: str, tier: str, *, stripe_knows: bool = False) -> str:
    """A purchase whose webhooks never reached us (`stripe_knows`: Stripe saw them fail)."""
    mark = fake.lifecycle.event_count()
    sub = fake.lifecycle.buy(email, price, tier=tier)
    for event in fake.lifecycle.events_since(mark):
        fake.lifecycle.mark_delivery(event["id"], not stripe_knows)
    assert isinstance(fake.clock, FakeClock)
    fake.clock.advance(2)  # Stripe's clock moves on: reads come after the purchase they reflect
    return str(sub["id"])


def subscriptions(env: dict[str, str]) -> list[tuple[str, str, str]]:
    with sqlite3.connect(env["KAMIYO_DATABASE_URL"]) as db:
        return db.execute("SELECT subscription_id, status, tier FROM subscriptions ORDER BY 1").fetchall()


def test_reconcile_exits_0_in_sync_3_on_drift_and_fix_heals_it(env: dict[str, str], fake: FakeStripe) -> None:
    in_sync = cli(["reconcile"], env)
    assert (in_sync.returncode, in_sync.stderr) == (0, "")
    assert in_sync.stdout.startswith("0 drift(s)")

    sub_id = bought_unseen(fake, "ann@example.com", TEAM, "team")
    found = cli(["reconcile", "--json"], env)
    assert found.returncode == 3, found.stderr
    report = json.loads(found.stdout)
    assert (report["result"], report["drift"], report["found_by_kind"]) == (
        "drift", 1, {"entitled_in_stripe": 1, "missing_here": 1})
    [drifted] = report["subscriptions"]
    assert (drifted["subscription_id"], drifted["stripe"]["id"], drifted["store"]) == (sub_id, sub_id, None)
    assert subscriptions(env) == []

    fixed = cli(["reconcile", "--fix"], env)
    assert fixed.returncode == 3, fixed.stderr
    assert "1 healed" in fixed.stdout.splitlines()[0] and f"{sub_id}  missing_here" in fixed.stdout
    assert subscriptions(env) == [(sub_id, "active", "team")]
    again = cli(["reconcile"], env)
    assert again.returncode == 0, again.stdout


def test_recovered_events_are_listed_with_their_source(env: dict[str, str], fake: FakeStripe) -> None:
    sub_id = bought_unseen(fake, "bob@example.com", PERSONAL, "personal", stripe_knows=True)

    fixed = cli(["reconcile", "--fix", "--json"], env)

    assert fixed.returncode == 3, fixed.stderr
    report = json.loads(fixed.stdout)
    assert {m["type"]: m["recovery"]["status"] for m in report["missed_events"]} == {
        "customer.created": "processed", "customer.subscription.created": "processed",
        "checkout.session.completed": "processed"}
    listed = cli(["events", "list", "--json"], env)
    assert {(e["type"], e["source"], e["status"]) for e in json.loads(listed.stdout)} == {
        ("customer.created", "recovery", "processed"), ("customer.subscription.created", "recovery", "processed"),
        ("checkout.session.completed", "recovery", "processed")}
    table = cli(["events", "list", "--source", "recovery"], env)
    assert table.stdout.splitlines()[0].split()[:5] == ["EVENT_ID", "TYPE", "STATUS", "SOURCE", "ATTEMPTS"]
    assert subscriptions(env) == [(sub_id, "active", "personal")]


def test_an_unreachable_stripe_exits_1_with_one_line_and_nothing_applied(env: dict[str, str]) -> None:
    env = {**env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}

    result = cli(["reconcile", "--fix"], env)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kamiyo-mcp: reconcile: Stripe could not be reached (check the network and STRIPE_API_BASE); "
        "nothing was applied"]
    assert subscriptions(env) == []


def test_a_refused_key_exits_1_without_showing_any_of_it(env: dict[str, str]) -> None:
    key = "sk_live_" + "Z9" * 20
    result = cli(["reconcile"], {**env, "STRIPE_SECRET_KEY": key})

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "Stripe refused the API key (401)" in line and "nothing was applied" in line
    assert "Z9Z9" not in line and "sk_live_" not in line


def test_a_key_without_permission_failing_halfway_exits_1_and_applies_nothing(
        env: dict[str, str], fake: FakeStripe) -> None:
    bought_unseen(fake, "cat@example.com", PERSONAL, "personal", stripe_knows=True)
    fake.fail_next(403, after=2)  # events and the first price's page are read; the next read is refused

    result = cli(["reconcile", "--fix"], env)

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "lacks a permission reconciliation needs" in line and "rak_subscription_read" in line
    assert "nothing was applied" in line
    assert subscriptions(env) == []
    with sqlite3.connect(env["KAMIYO_DATABASE_URL"]) as db:
        assert db.execute("SELECT COUNT(*) FROM stripe_events").fetchone() == (0,)
        assert json.loads(db.execute("SELECT last_result FROM scheduled_jobs").fetchone()[0])["result"] == "failed"


def test_bad_usage_exits_2_with_the_reason(env: dict[str, str]) -> None:
    bad_date = cli(["reconcile", "--since", "last tuesday"], env)
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    no_key = cli(["reconcile"], {k: v for k, v in env.items() if k != "STRIPE_SECRET_KEY"})
    assert no_key.returncode == 2 and "STRIPE_SECRET_KEY: must be set to reconcile" in no_key.stderr
    no_prices = cli(["reconcile"], {k: v for k, v in env.items() if not k.startswith("STRIPE_PRICE_MCP_")})
    assert no_prices.returncode == 2 and "no STRIPE_PRICE_MCP_* price is configured" in no_prices.stderr


def test_fix_refuses_while_another_process_reconciles(env: dict[str, str], fake: FakeStripe) -> None:
    bought_unseen(fake, "dot@example.com", TEAM, "team")

    async def hold() -> None:
        store = await open_store(env["KAMIYO_DATABASE_URL"])
        try:
            assert await store.start_job("reconcile", "serve-4242", now=int(time.time()), lease_seconds=300)
        finally:
            await store.close()

    asyncio.run(hold())
    refused = cli(["reconcile", "--fix"], env)
    assert refused.returncode == 1 and "running in another process (serve-4242)" in refused.stderr
    report_only = cli(["reconcile"], env)  # a report needs no lease: safe any time
    assert report_only.returncode == 3
    assert subscriptions(env) == []


def test_since_limits_the_scan_to_subscriptions_created_from_then(env: dict[str, str], fake: FakeStripe) -> None:
    bought_unseen(fake, "old@example.com", TEAM, "team")
    with fake._lock:
        for sub in fake.state.subscriptions.values():
            sub["created"] -= 40 * 86_400  # bought long ago
    recent = bought_unseen(fake, "new@example.com", PERSONAL, "personal")
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))

    result = cli(["reconcile", "--since", day, "--json"], env)

    assert result.returncode == 3, result.stderr
    assert [s["subscription_id"] for s in json.loads(result.stdout)["subscriptions"]] == [recent]
    assert KEY not in result.stdout + result.stderr


def start_fix(env: dict[str, str]) -> subprocess.Popen[str]:
    """`kamiyo-mcp reconcile --fix` started in the background, as `cli` runs it."""
    return subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", "reconcile", "--fix"], cwd=REPO, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def reached(fake: FakeStripe, process: subprocess.Popen[str], path: str) -> None:
    """Wait until the process has sent its request to `path` (whose reply the fake holds)."""
    with anyio.fail_after(60):
        while not fake.requests_to("GET", path):
            assert process.poll() is None, process.communicate()
            await anyio.sleep(0.05)  # polling the process's progress, bounded by fail_after


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path)


async def test_two_fix_runs_in_separate_processes_never_overlap(
        env: dict[str, str], fake: FakeStripe, database_url: str) -> None:
    env = {**env, "KAMIYO_DATABASE_URL": database_url}
    sub_id = bought_unseen(fake, "eve@example.com", TEAM, "team")
    fake.hold_replies("/v1/events")  # the first run's first read stays in flight: it holds the lease meanwhile
    first = start_fix(env)
    try:
        await reached(fake, first, "/v1/events")
        with anyio.fail_after(60):
            second = await anyio.to_thread.run_sync(lambda: cli(["reconcile", "--fix"], env))
    finally:
        fake.release_replies("/v1/events")
        out, err = first.communicate(timeout=60)

    assert second.returncode == 1 and "running in another process (cli-" in second.stderr
    assert first.returncode == 3 and "1 healed" in out, err
    store = await open_store(database_url)
    try:
        assert (await store.stored_subscriptions([sub_id]))[sub_id].row.status == "active"
        assert [m.subscription_id for m in await store.list_outbox()] == [sub_id]  # one welcome mail
    finally:
        await store.close()


async def test_a_fix_run_killed_mid_read_applies_nothing_and_the_next_run_heals_once_its_lease_expires(
        env: dict[str, str], fake: FakeStripe) -> None:
    sub_id = bought_unseen(fake, "kit@example.com", TEAM, "team", stripe_knows=True)
    fake.hold_replies("/v1/subscriptions")  # the missed events are read; the first listing is in flight
    killed = start_fix(env)
    try:
        await reached(fake, killed, "/v1/subscriptions")
        killed.kill()
        killed.communicate(timeout=30)
    finally:
        fake.release_replies("/v1/subscriptions")

    assert subscriptions(env) == []
    with sqlite3.connect(env["KAMIYO_DATABASE_URL"]) as db:
        assert db.execute("SELECT COUNT(*) FROM stripe_events").fetchone() == (0,)  # read, never applied
    refused = cli(["reconcile", "--fix"], env)
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert "running in another process (cli-" in line and "if that process has died, its lease expires at" in line
    assert cli(["reconcile"], env).returncode == 3  # a report needs no lease

    with sqlite3.connect(env["KAMIYO_DATABASE_URL"]) as db:  # the lease's five minutes pass
        db.execute("UPDATE scheduled_jobs SET lease_expires_at = ?", (int(time.time()) - 1,))
    healed = cli(["reconcile", "--fix"], env)

    assert healed.returncode == 3 and "4 healed" in healed.stdout.splitlines()[0], healed.stdout
    assert subscriptions(env) == [(sub_id, "active", "team")]
    assert cli(["reconcile"], env).returncode == 0
