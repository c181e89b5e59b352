"""Fixtures of the reconciliation tests: the fake Stripe on a test clock, our store, endpoint and reconciler."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from billing.http.webhooks import webhook_routes
from billing.stripe_gateway import StripeGateway
from billing.webhooks.registry import HandlerRegistry, default_registry
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.reconcile.reconcile_support import KEY, FakeClock, World, environment, fresh_fake_stripe
from tests.billing.webhooks.test_webhook_localstripe import localstripe  # noqa: F401  (the fixture, shared)
from tests.fakes.stripe_fake import FakeStripe


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeStripe]:
    with fresh_fake_stripe(clock) as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, fake: FakeStripe) -> Settings:
    return load_settings(environment(tmp_path, fake))


@pytest.fixture
def registry() -> HandlerRegistry:
    return default_registry()


@pytest.fixture
async def world(settings: Settings, fake: FakeStripe, clock: FakeClock,
                registry: HandlerRegistry) -> AsyncIterator[World]:
    async with Runtime(settings).opened() as runtime, StripeGateway(KEY, fake.base_url) as gateway:
        app = Starlette(routes=webhook_routes(lambda: runtime.store, settings.billing, registry=registry))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield World(fake, clock, runtime, client, gateway, registry, settings.database_path,
                        delivered_mark=fake.lifecycle.event_count())
