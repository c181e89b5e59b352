"""The reconciliation tests' world: a stateful fake Stripe with a clock the test moves, our real store,
our real webhook endpoint (in-process, really signed bodies) and the reconciler, all wired together.

    sub = world.life.buy("ann@example.com", PERSONAL, tier="personal")   # Stripe changes...
    await world.deliver_new()                                             # ...and their webhooks reach us
    report = await world.reconcile(fix=True)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from billing.access import Denial, Grant
from billing.http.webhooks import PATH
from billing.reconcile.report import Report
from billing.reconcile.runner import Reconciler
from billing.store.records import StoredSubscription
from billing.stripe_gateway import StripeGateway
from billing.webhooks.registry import HandlerRegistry
from kamiyo_mcp.runtime import Runtime
from tests.billing.webhooks.webhook_support import SECRET, signed_headers
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_fake import run_fake_stripe
from tests.fakes.stripe_lifecycle import Lifecycle
from tests.support import base_env, mint_token

PERSONAL = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM = "price_1PgafmB7WZ01zgkW02Hf9z6c"
ENTERPRISE = "price_kamiyoEnterpriseTest01"
FOREIGN = "price_notOneOfOursTest0001"  # a price the server does not sell
KEY = "sk_test_reconcile_0123456789"


class FakeClock:
    """Stripe's clock (and ours) as the test sets it: whole seconds that only move when told."""

    def __init__(self, start: float) -> None:
        self.now = float(int(start))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1) -> None:
        self.now += seconds


def environment(tmp_path: Path, fake: FakeStripe, **extra: str) -> dict[str, str]:
    return base_env(tmp_path / "kamiyo.db", STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=fake.base_url,
                    STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_PRICE_MCP_PERSONAL=PERSONAL, STRIPE_PRICE_MCP_TEAM=TEAM,
                    STRIPE_PRICE_MCP_ENTERPRISE=ENTERPRISE, KAMIYO_LOG_LEVEL="WARNING", **extra)


def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database that several processes' stores open, on the backend the fixture's param names."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))


@contextmanager
def fresh_fake_stripe(clock: FakeClock) -> Iterator[FakeStripe]:
    """A fake Stripe on `clock` holding no subscription yet, selling our three prices and a foreign one."""
    with run_fake_stripe(clock=clock) as fake:
        fake.lifecycle.forget_subscriptions()
        add_prices(fake)
        yield fake


def add_prices(fake: FakeStripe) -> None:
    """The enterprise price and a foreign one, beside the fixture's personal and team prices."""
    with fake._lock:
        template = fake.state.prices[PERSONAL]
        for price_id, amount in ((ENTERPRISE, 29900), (FOREIGN, 500)):
            fake.state.prices[price_id] = {**json.loads(json.dumps(template)), "id": price_id, "unit_amount": amount}


@dataclass
class World:
    fake: FakeStripe
    clock: FakeClock
    runtime: Runtime
    client: httpx.AsyncClient
    gateway: StripeGateway
    registry: HandlerRegistry
    db_path: Path | None
    delivered_mark: int = 0
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def life(self) -> Lifecycle:
        return self.fake.lifecycle

    @property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.runtime.store, self.gateway, self.runtime.settings.billing, clock=self.clock)

    async def reconcile(self, *, fix: bool = False, since: int | None = None) -> Report:
        return await self.reconciler.run(fix=fix, since=since)

    # -- webhooks --------------------------------------------------------------

    def new_events(self) -> list[dict[str, Any]]:
        """The events Stripe emitted since the last `deliver_new`/`skip_new` (oldest first)."""
        events = self.life.events_since(self.delivered_mark)
        self.delivered_mark += len(events)
        return events

    async def deliver(self, events: Sequence[dict[str, Any]]) -> list[int]:
        """POST each event, signed, to our endpoint; Stripe records what we answered."""
        statuses = []
        for event in events:
            payload = json.dumps(event).encode()
            response = await self.client.post(PATH, content=payload, headers=signed_headers(payload))
            self.life.mark_delivery(event["id"], response.status_code < 300)
            statuses.append(response.status_code)
        return statuses

    async def deliver_new(self) -> list[int]:
        return await self.deliver(self.new_events())

    def lose_new(self, *, stripe_knows: bool = True) -> list[dict[str, Any]]:
        """The new events never reach us. `stripe_knows`: Stripe saw the delivery fail (our endpoint was
        down), so it lists them as undelivered; else it believes them delivered (e.g. the endpoint was
        not subscribed to the type, or the events are older than its 30-day window)."""
        events = self.new_events()
        for event in events:
            self.life.mark_delivery(event["id"], not stripe_knows)
        return events

    # -- the store -------------------------------------------------------------

    async def stored(self, subscription_id: str) -> StoredSubscription | None:
        return (await self.runtime.store.stored_subscriptions([subscription_id])).get(subscription_id)

    async def row(self, subscription_id: str) -> StoredSubscription:
        """The stored subscription, which must exist."""
        stored = await self.stored(subscription_id)
        assert stored is not None, f"{subscription_id} is not in the store"
        return stored

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self.db_path is not None
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()

    async def welcome_mails(self, subscription_id: str) -> int:
        return sum(1 for m in await self.runtime.store.list_outbox() if m.subscription_id == subscription_id
                   and m.cancelled_at is None)

    # -- access ----------------------------------------------------------------

    async def mint(self, subscription_id: str) -> str:
        """A token of the subscription as the store has it (what a redeemed claim would give)."""
        stored = await self.stored(subscription_id)
        assert stored is not None, f"{subscription_id} is not in the store"
        token = await mint_token(self.runtime, stored.row.user_id, subscription_id, stored.row.tier)
        self.tokens[subscription_id] = token
        return token

    async def authorize(self, subscription_id: str, tool: str = "get_account_status") -> Grant | Denial:
        return await self.runtime.authority.authorize(self.tokens[subscription_id], tool)
