"""The outbox sender is woken by the events that queued a mail, and by no other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from billing.http.webhooks import webhook_routes
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings
from tests.billing.webhooks.webhook_support import CUSTOMER, EVENT_NAMES, Webhooks, load_event, raw_event

CHECKOUT_FIRST = EVENT_NAMES
CREATED = "customer.subscription.created"
SUBSCRIPTION_FIRST = (CREATED, *(name for name in EVENT_NAMES if name != CREATED))


@asynccontextmanager
async def endpoint(settings: Settings, wakes: list[str]) -> AsyncIterator[Webhooks]:
    """The webhook endpoint whose `on_mail_queued` appends to `wakes`."""
    async with Runtime(settings).opened() as runtime:
        app = Starlette(routes=webhook_routes(lambda: runtime.store, settings.billing,
                                              on_mail_queued=lambda: wakes.append("woken")))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Webhooks(client, runtime, settings.database_path)


@pytest.mark.parametrize("order", [CHECKOUT_FIRST, SUBSCRIPTION_FIRST], ids=["checkout_first", "subscription_first"])
async def test_the_outbox_sender_is_woken_once_per_queued_mail_and_not_by_other_events(
        settings: Settings, order: tuple[str, ...]) -> None:
    wakes: list[str] = []
    seen = []
    async with endpoint(settings, wakes) as webhooks:
        # Every lifecycle event, then each again (a repeat applies nothing and queues nothing).
        for name in (*order, *order):
            response = await webhooks.post(raw_event(name))
            assert response.status_code == 200, response.text
            seen.append((name, response.json()["status"], len(wakes),
                         webhooks.rows("SELECT COUNT(*) FROM outbox")[0][0]))

    assert [(name, status, woken) for name, status, woken, _ in seen] == \
        [(name, status, queued) for name, status, _, queued in seen]
    assert seen[len(order) - 1][2:] == (1, 1)  # one welcome mail, whichever event queued it
    assert [status for _, status, _, _ in seen[len(order):]] == ["duplicate"] * len(order)


async def test_a_subscription_event_that_queues_the_welcome_mail_wakes_the_sender(settings: Settings) -> None:
    # A subscription whose customer is expanded (with an email) queues the welcome mail itself.
    event = load_event("customer.subscription.created")
    event["data"]["object"]["customer"] = {"id": CUSTOMER, "object": "customer", "email": "buyer@example.com"}
    wakes: list[str] = []
    async with endpoint(settings, wakes) as webhooks:
        response = await webhooks.post(event)

        assert response.json()["status"] == "processed", response.text
        assert webhooks.rows("SELECT kind, recipient FROM outbox") == [("welcome", "buyer@example.com")]
        assert wakes == ["woken"]
