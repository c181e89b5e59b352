"""After any mix of faults, one `kamiyo-mcp reconcile --fix` makes money and access agree.

Hypothesis draws random lifecycles of several subscriptions in the stateful fake Stripe (purchases,
dashboard price changes, cancellation at period end and back, payment trouble, renewals,
cancellations, email changes, sometimes in the same second), and for every webhook a fate: delivered,
lost where Stripe saw the failure (it lists the event as undelivered), lost silently (Stripe believes
it was delivered), delivered twice, or delayed and delivered at the end in a drawn order. A real
`kamiyo-mcp serve` process receives them and is killed with SIGKILL at random points, with deliveries
in flight, then restarted. Then one `kamiyo-mcp reconcile --fix` (a real process) runs, and:

- the store agrees with Stripe on every subscription ever made (checked field by field here, and by a
  second reconciliation that finds 0 drift);
- every entitled subscription of the example can call a tool through the MCP client, and no ended one
  can, not even with a token minted while it was still paid.

The world (fake Stripe, database, server) is shared by the examples, as a real deployment's history
is: each example adds new customers, and each check covers every subscription ever made.
`KAMIYO_PROPERTY_EXAMPLES` sets the number of examples (default 12: about a minute on a 2-core CI
machine); e.g. `KAMIYO_PROPERTY_EXAMPLES=200` for a long run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from billing.access import entitlement_ended
from billing.http.webhooks import PATH
from billing.reconcile.runner import Reconciler
from billing.stripe_gateway import StripeGateway
from billing.subscription_state import parse_subscription
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.reconcile.reconcile_support import (
    ENTERPRISE,
    KEY,
    PERSONAL,
    TEAM,
    FakeClock,
    environment,
    fresh_fake_stripe,
)
from tests.billing.webhooks.webhook_support import signed_headers
from tests.fakes.stripe_fake import FakeStripe
from tests.support import ServerProcess, cli, mint_token
from tests.support_mcp import mcp_session

EXAMPLES = int(os.environ.get("KAMIYO_PROPERTY_EXAMPLES", "12"))
PRICES = {PERSONAL: "personal", TEAM: "team", ENTERPRISE: "enterprise"}
FATES = ("delivered", "delivered", "delivered", "lost_seen", "lost_unseen", "twice", "later")
MAX_KILLS = 1  # per example: a restart costs a couple of seconds


@dataclass
class Deployment:
    fake: FakeStripe
    clock: FakeClock
    server: ServerProcess
    env: dict[str, str]
    settings: Settings
    mark: int = 0  # events handed to a fate so far
    tokens: dict[str, list[str]] = field(default_factory=dict)  # subscription -> tokens minted along the way
    examples: int = 0
    kills: int = 0
    last_fix: str = ""  # the last `reconcile --fix --json` report, to explain a failure


@pytest.fixture
def deployment(tmp_path: Path, server_factory: type[ServerProcess]) -> Iterator[Deployment]:
    clock = FakeClock(time.time())
    with fresh_fake_stripe(clock) as fake:
        env = environment(tmp_path, fake, KAMIYO_RECONCILE_INTERVAL="0")
        server = server_factory(env).start()
        yield Deployment(fake, clock, server, env, load_settings(env), mark=fake.lifecycle.event_count())


def test_after_any_mix_of_faults_one_fix_makes_money_and_access_agree(deployment: Deployment) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def lifecycle_then_fix(data: st.DataObject) -> None:
        asyncio.run(one_example(deployment, data))
        deployment.examples += 1

    lifecycle_then_fix()
    print(f"\nreconcile property: {deployment.examples} cases, {deployment.kills} server kills, "
          f"{len(deployment.fake.lifecycle.subscriptions())} subscriptions")
    assert deployment.examples >= EXAMPLES


async def one_example(world: Deployment, data: st.DataObject) -> None:
    life = world.fake.lifecycle
    async with httpx.AsyncClient(base_url=world.server.url, timeout=30) as http:
        later: list[dict[str, Any]] = []
        kills = 0

        async def settle() -> None:
            """Hand each new event its fate; maybe kill the server with deliveries in flight."""
            nonlocal kills
            events = life.events_since(world.mark)
            world.mark += len(events)
            while events:
                if kills < MAX_KILLS and data.draw(st.integers(0, 11), label="kill") == 0:
                    burst = events[:data.draw(st.integers(1, 3), label="in flight")]
                    events = events[len(burst):]
                    await kill_during(world, http, burst)
                    kills += 1
                    continue
                event = events.pop(0)
                fate = data.draw(st.sampled_from(FATES), label=f"fate of {event['type']}")
                if fate == "lost_seen":
                    life.mark_delivery(event["id"], False)
                elif fate == "lost_unseen":
                    life.mark_delivery(event["id"], True)
                elif fate == "later":
                    later.append(event)
                else:
                    for _ in range(2 if fate == "twice" else 1):
                        await deliver(world, http, event)

        count = data.draw(st.integers(1, 4), label="subscriptions")
        subs = []
        for n in range(count):
            price = data.draw(st.sampled_from(sorted(PRICES)), label="price")
            subs.append(life.buy(f"buyer{world.examples}.{n}@example.com", price, tier=PRICES[price])["id"])
            world.clock.advance(data.draw(st.integers(0, 1), label="seconds"))
        await settle()
        await mint_some(world, data, subs)
        for _ in range(data.draw(st.integers(0, 8), label="changes")):
            change(world, data, subs)
            world.clock.advance(data.draw(st.integers(0, 1), label="seconds"))
            await settle()
        for event in data.draw(st.permutations(later), label="delayed, in this order"):
            await deliver(world, http, event)
        world.kills += kills

    world.clock.advance(2)  # the reconciliation comes after the lifecycle
    fixed = cli(["reconcile", "--fix", "--json"], world.env)
    assert fixed.returncode in (0, 3), fixed.stderr
    assert json.loads(fixed.stdout)["result"] in ("in_sync", "healed"), fixed.stdout
    world.last_fix = fixed.stdout
    await assert_store_agrees_with_stripe(world)
    await assert_access_follows_money(world, subs)


def change(world: Deployment, data: st.DataObject, subs: list[str]) -> None:
    """One thing happens in Stripe to a subscription that has not ended."""
    life = world.fake.lifecycle
    live = [s for s in subs if life.subscription(s)["status"] != "canceled"]
    if not live:
        return
    sub = data.draw(st.sampled_from(live), label="subscription")
    kind = data.draw(st.sampled_from(["price", "cancel_at_period_end", "status", "renew", "cancel", "email"]),
                     label="change")
    if kind == "price":
        life.change_price(sub, data.draw(st.sampled_from(sorted(PRICES)), label="new price"))
    elif kind == "cancel_at_period_end":
        life.set_cancel_at_period_end(sub, data.draw(st.booleans(), label="cancel at period end"))
    elif kind == "status":
        life.set_status(sub, data.draw(st.sampled_from(["past_due", "unpaid", "active"]), label="status"))
    elif kind == "renew":
        life.renew(sub)
    elif kind == "cancel":
        life.cancel(sub)
    else:
        customer = life.subscription(sub)["customer"]
        life.change_email(customer, f"renamed{data.draw(st.integers(0, 99), label='n')}.{customer}@example.com")


async def deliver(world: Deployment, http: httpx.AsyncClient, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    response = await http.post(PATH, content=payload, headers=signed_headers(payload))
    assert response.status_code in (200, 500), response.text
    world.fake.lifecycle.mark_delivery(event["id"], response.status_code == 200)


async def kill_during(world: Deployment, http: httpx.AsyncClient, burst: list[dict[str, Any]]) -> None:
    """Send `burst` at once, SIGKILL the server when the first answer is back, restart it."""
    async def send(event: dict[str, Any]) -> bool:
        payload = json.dumps(event).encode()
        try:
            response = await http.post(PATH, content=payload, headers=signed_headers(payload))
        except httpx.TransportError:
            return False
        return response.status_code == 200

    tasks = [asyncio.create_task(send(event)) for event in burst]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    process = world.server.process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    for event, task in zip(burst, tasks, strict=True):
        world.fake.lifecycle.mark_delivery(event["id"], await task)  # no answer: Stripe saw a failure
    world.server.start()


async def mint_some(world: Deployment, data: st.DataObject, subs: list[str]) -> None:
    """Some customers redeemed their claim while the subscription was paid (a token to revoke later)."""
    async with Runtime(world.settings).opened() as runtime:
        stored = await runtime.store.stored_subscriptions(subs)
        for sub in subs:
            row = stored.get(sub)  # present or not depends on timing (kills): never let it decide a draw
            if data.draw(st.booleans(), label="redeemed") and row is not None:
                token = await mint_token(runtime, row.row.user_id, sub, row.row.tier)
                world.tokens.setdefault(sub, []).append(token)


async def assert_store_agrees_with_stripe(world: Deployment) -> None:
    config = world.settings.billing
    with sqlite3.connect(world.env["KAMIYO_DATABASE_URL"]) as db:
        stored = {row[0]: row[1:] for row in db.execute(
            "SELECT s.subscription_id, s.status, s.tier, s.current_period_end, s.cancel_at_period_end, c.email"
            " FROM subscriptions s JOIN customers c USING (user_id) WHERE s.kind = 'stripe'")}
    subscriptions = world.fake.lifecycle.subscriptions()
    assert len(stored) == len(subscriptions)
    for sub in subscriptions:
        stripe = parse_subscription(sub, config)
        customer = world.fake.state.customers[sub["customer"]]
        expected = (stripe.status, stripe.tier, stripe.current_period_end, int(stripe.cancel_at_period_end),
                    customer["email"].lower())
        assert stored[sub["id"]] == expected, explain(world, sub["id"], stored[sub["id"]], expected)
    async with Runtime(world.settings).opened() as runtime, StripeGateway(KEY, world.fake.base_url) as gateway:
        report = await Reconciler(runtime.store, gateway, config).run(fix=False)
    assert report.drift == 0, report.lines()


def explain(world: Deployment, subscription_id: str, stored: tuple[Any, ...], expected: tuple[Any, ...]) -> str:
    """What happened to a subscription that disagrees: its audit rows, the stored and the emitted events."""
    with sqlite3.connect(world.env["KAMIYO_DATABASE_URL"]) as db:
        audit = db.execute("SELECT at, actor, action, detail FROM audit_log WHERE subject = ? ORDER BY id",
                           (subscription_id,)).fetchall()
        events = db.execute("SELECT event_id, type, created, status, source, attempts, message FROM stripe_events"
                            " WHERE payload LIKE ? ORDER BY received_at", (f"%{subscription_id}%",)).fetchall()
    emitted = [(e["id"], e["type"], e["created"], world.fake.state.delivered.get(e["id"]))
               for e in world.fake.state.events.values() if subscription_id in json.dumps(e)]
    reported = [(r["kinds"], r.get("heal")) for r in json.loads(world.last_fix or "{}").get("subscriptions", [])
                if r["subscription_id"] == subscription_id]
    return (f"{subscription_id}: stored {stored}, Stripe {expected}\naudit {audit}\nstored events {events}\n"
            f"emitted (id, type, created, delivered) {emitted}\nlast fix {reported}")


async def assert_access_follows_money(world: Deployment, subscription_ids: list[str]) -> None:
    """Each of the example's subscriptions: a token minted now and any minted earlier call a tool iff it is paid."""
    now = int(time.time())
    async with Runtime(world.settings).opened() as runtime:
        stored = await runtime.store.stored_subscriptions(subscription_ids)
        checks = []
        for sub in map(world.fake.lifecycle.subscription, subscription_ids):
            stripe = parse_subscription(sub, world.settings.billing)
            entitled = entitlement_ended(stripe.status, stripe.current_period_end, stripe.cancel_at_period_end,
                                         now) is None
            row = stored[sub["id"]]
            fresh = await mint_token(runtime, row.row.user_id, sub["id"], row.row.tier)
            for token in [fresh, *world.tokens.get(sub["id"], [])]:
                checks.append((sub["id"], entitled, token))
    called = await asyncio.gather(*(can_call_a_tool(world.server.url, token) for _, _, token in checks))
    for (subscription_id, entitled, _), ran in zip(checks, called, strict=True):
        assert ran is entitled, (subscription_id, entitled)


async def can_call_a_tool(url: str, token: str) -> bool:
    """Whether `get_account_status` runs for this token through the MCP client (refused before the
    session, or as a tool error: no); `/api/mcp/validate` must say the same."""
    async with httpx.AsyncClient(base_url=url) as http:
        validated = await http.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
    active = validated.status_code == 200 and validated.json().get("active") is True
    called = False
    try:
        async with mcp_session(url, token) as client:
            called = not (await client.call_tool("get_account_status", {})).is_error
    except* MCPError:
        called = False
    assert called is active, f"the tool ran: {called}; /api/mcp/validate said active: {active}"
    return called
