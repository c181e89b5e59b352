"""The scheduled reconciliation: due once per interval across processes, one holder at a time, a failed
run recorded and retried sooner, the result kept in the store for every process to show."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anyio
import pytest

from billing.reconcile.report import Report
from billing.reconcile.runner import Reconciler
from billing.reconcile.schedule import (
    CHECK_EVERY_SECONDS,
    FIRST_RUN_DELAY_SECONDS,
    JOB,
    LEASE_SECONDS,
    RETRY_FAILED_SECONDS,
    ReconcileSchedule,
    ScheduleConfig,
    run_leased,
)
from billing.store import open_store
from billing.stripe_gateway import StripeGateway
from kamiyo_mcp.settings import Settings
from tests.billing.reconcile.reconcile_support import KEY, TEAM, FakeClock, World, backend_url
from tests.fakes.stripe_fake import FakeStripe

HOUR = 3600.0


class Observed:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str | None]] = []

    def __call__(self, report: Report | None, error: BaseException | None, seconds: float) -> None:
        self.runs.append((report.result if report is not None else "failed", str(error) if error else None))


def schedule(world: World, observed: Observed) -> ReconcileSchedule:
    return ReconcileSchedule(world.runtime.store, world.runtime.settings.billing, ScheduleConfig(interval=HOUR),
                             on_run=observed, clock=world.clock, gateway=lambda: world.gateway)


async def last_result(world: World) -> dict[str, object]:
    state = await world.runtime.store.job_state(JOB)
    assert state is not None and state.last_result is not None
    return dict(json.loads(state.last_result))


async def test_a_due_run_heals_records_its_result_and_is_not_due_again_until_the_interval(world: World) -> None:
    observed = Observed()
    job = schedule(world, observed)
    sub = world.life.buy("ann@example.com", TEAM, tier="team")
    world.lose_new(stripe_knows=False)
    world.clock.advance(2)

    assert (await job.tick(world.reconciler)) is not None
    assert (await world.stored(sub["id"])) is not None
    result = await last_result(world)
    assert (result["result"], result["drift"], result["healed"]) == ("healed", 1, 1)

    world.clock.advance(HOUR - 10)
    assert await job.tick(world.reconciler) is None  # another process's check now would find it not due too
    world.clock.advance(10)
    assert await job.tick(world.reconciler) is not None
    assert (await last_result(world))["result"] == "in_sync"
    assert observed.runs == [("healed", None), ("in_sync", None)]


async def test_a_run_held_by_another_process_is_left_to_it_until_its_lease_expires(world: World) -> None:
    observed = Observed()
    job = schedule(world, observed)
    assert await world.runtime.store.start_job(JOB, "other-process", now=int(world.clock()),
                                               lease_seconds=LEASE_SECONDS)

    assert await job.tick(world.reconciler) is None
    world.clock.advance(LEASE_SECONDS + 1)  # the other process died mid-run: its run counts as failed
    assert await job.tick(world.reconciler) is not None
    assert observed.runs == [("in_sync", None)]


async def test_a_failed_run_is_recorded_and_retried_before_a_full_interval(world: World) -> None:
    observed = Observed()
    job = schedule(world, observed)
    world.fake.fail_next(401, {"message": "Invalid API Key provided: sk_test_****6789"})

    assert await job.tick(world.reconciler) is None

    result = await last_result(world)
    assert result["result"] == "failed" and "Invalid API Key" in str(result["error"])
    assert "6789" not in json.dumps(result)  # not even the masked key Stripe quotes
    assert observed.runs == [("failed", "Invalid API Key provided: [redacted]")]
    world.clock.advance(RETRY_FAILED_SECONDS - 1)
    assert await job.tick(world.reconciler) is None
    world.clock.advance(1)
    assert await job.tick(world.reconciler) is not None
    assert (await last_result(world))["result"] == "in_sync"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request, tmp_path)


async def test_two_processes_due_at_once_run_the_reconciliation_once(
        shared_url: str, fake: FakeStripe, clock: FakeClock, settings: Settings) -> None:
    url = shared_url
    sub = fake.lifecycle.buy("ann@example.com", TEAM, tier="team")
    clock.advance(2)
    stores = [await open_store(url) for _ in range(2)]
    try:
        async with StripeGateway(KEY, fake.base_url) as gateway:
            schedules = [ReconcileSchedule(store, settings.billing, ScheduleConfig(interval=HOUR), clock=clock,
                                           gateway=lambda: gateway) for store in stores]
            reconcilers = [Reconciler(store, gateway, settings.billing, clock=clock) for store in stores]
            ran = await asyncio.gather(*(s.tick(r) for s, r in zip(schedules, reconcilers, strict=True)))
        assert sorted(report is not None for report in ran) == [False, True]
        stored = await stores[0].stored_subscriptions([sub["id"]])
        assert stored[sub["id"]].row.status == "active"
        assert [m.subscription_id for m in await stores[1].list_outbox()] == [sub["id"]]  # one welcome mail
    finally:
        for store in stores:
            await store.close()


class Sleeps:
    """The schedule's sleep, recorded: returns at once until `limit` calls, then parks until cancelled."""

    def __init__(self, limit: int) -> None:
        self.seconds: list[float] = []
        self.limit = limit
        self.parked = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if len(self.seconds) >= self.limit:
            self.parked.set()
            await asyncio.Event().wait()  # cancelled when the schedule stops


@pytest.mark.parametrize(("interval", "first", "then"), [
    (HOUR, FIRST_RUN_DELAY_SECONDS, CHECK_EVERY_SECONDS),  # the default: shortly after start, then each minute
    (5.0, 5.0, 5.0),  # an interval shorter than those: never waits longer than the interval
])
async def test_serve_runs_the_first_reconciliation_shortly_after_start_then_checks_on_its_interval(
        world: World, interval: float, first: float, then: float) -> None:
    observed = Observed()
    sleeps = Sleeps(limit=3)
    sub = world.life.buy("ann@example.com", TEAM, tier="team")
    world.lose_new(stripe_knows=False)
    world.clock.advance(2)
    job = ReconcileSchedule(world.runtime.store, world.runtime.settings.billing, ScheduleConfig(interval=interval),
                            on_run=observed, clock=world.clock, sleep=sleeps,
                            gateway=lambda: StripeGateway(KEY, world.fake.base_url))

    async with job.running():
        with anyio.fail_after(30):
            await sleeps.parked.wait()

    assert sleeps.seconds == [first, then, then]
    assert observed.runs == [("healed", None)]  # the first check ran it; the next found it not due
    assert (await world.stored(sub["id"])) is not None


class LeaseTime(Sleeps):
    """The renewal's sleep: the test clock moves by what it sleeps (a run that lasts that long)."""

    def __init__(self, clock: FakeClock, limit: int) -> None:
        super().__init__(limit)
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await super().__call__(seconds)


async def test_a_run_longer_than_its_lease_keeps_it_by_renewing_and_releases_it_when_done(world: World) -> None:
    sub = world.life.buy("bea@example.com", TEAM, tier="team")
    world.lose_new(stripe_knows=False)
    world.clock.advance(2)
    started = int(world.clock())
    renewals = LeaseTime(world.clock, limit=4)  # renewed at +100, +200 and +300 s; now +400 s
    world.fake.hold_replies("/v1/events")  # the run's first read stays in flight meanwhile
    try:
        run = asyncio.create_task(run_leased(world.runtime.store, world.reconciler, holder="serve-a",
                                             clock=world.clock, sleep=renewals))
        with anyio.fail_after(30):
            await renewals.parked.wait()
        assert renewals.seconds == [LEASE_SECONDS / 3] * 4
        assert int(world.clock()) == started + 400 > started + LEASE_SECONDS  # past the first lease
        assert not await world.runtime.store.start_job(JOB, "serve-b", now=int(world.clock()),
                                                       lease_seconds=LEASE_SECONDS)
        state = await world.runtime.store.job_state(JOB)
        assert state is not None and (state.holder, state.lease_expires_at) == ("serve-a", started + 300 + 300)
    finally:
        world.fake.release_replies("/v1/events")
    with anyio.fail_after(30):
        report = await run

    assert report is not None and report.result == "healed" and (await world.stored(sub["id"])) is not None
    assert (await last_result(world))["result"] == "healed"
    assert await world.runtime.store.start_job(JOB, "serve-b", now=int(world.clock()), lease_seconds=LEASE_SECONDS)
