"""`/metrics`: webhook deliveries and timings, active subscriptions by tier, tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from billing.http.webhooks import webhook_routes
from kamiyo_mcp.metrics import Metrics, create_metrics, metrics_routes
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.webhooks.webhook_support import environment, raw_event, signed_headers


@pytest.fixture
async def app_client(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    settings: Settings = load_settings(environment(tmp_path))
    metrics = create_metrics()
    async with Runtime(settings).opened() as runtime:
        app = Starlette(routes=[
            *webhook_routes(lambda: runtime.store, settings.billing, on_delivery=metrics.observe_webhook),
            *metrics_routes(metrics, lambda: runtime.store),
        ])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client, metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def post(client: httpx.AsyncClient, name: str) -> None:
    payload = raw_event(name)
    await client.post("/api/v1/webhooks/stripe", content=payload, headers=signed_headers(payload))


async def test_metrics_count_deliveries_by_type_and_outcome_and_active_subscriptions_by_tier(
        app_client: tuple[httpx.AsyncClient, Metrics]) -> None:
    client, metrics = app_client
    await post(client, "customer.subscription.created")
    await post(client, "customer.subscription.created")
    await client.post("/api/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    metrics.observe_tool_call("get_account_status", "personal", "granted")

    response = await client.get("/metrics")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    created = "customer.subscription.created"
    assert found[("kamiyo_webhook_deliveries_total", (("event_type", created), ("outcome", "processed")))] == 1
    assert found[("kamiyo_webhook_deliveries_total", (("event_type", created), ("outcome", "duplicate")))] == 1
    assert found[("kamiyo_webhook_deliveries_total",
                  (("event_type", "unverified"), ("outcome", "invalid_signature")))] == 1
    assert found[("kamiyo_webhook_processing_seconds_count", (("event_type", created),))] == 2
    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "personal")))] == 1
    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "team")))] == 0
    assert found[("kamiyo_tool_calls_total",
                  (("outcome", "granted"), ("tier", "personal"), ("tool", "get_account_status")))] == 1


async def test_a_deleted_subscription_leaves_the_active_gauge(app_client: tuple[httpx.AsyncClient, Metrics]) -> None:
    client, _ = app_client
    await post(client, "customer.subscription.created")
    await post(client, "customer.subscription.deleted")

    found = samples((await client.get("/metrics")).text)

    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "personal")))] == 0
    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "team")))] == 0


def test_two_metric_sets_do_not_share_counters() -> None:
    first, second = create_metrics(), create_metrics()
    first.observe_tool_call("t", "team", "granted")

    assert b'kamiyo_tool_calls_total{outcome="granted",tier="team",tool="t"} 1.0' in first.render()
    assert b"kamiyo_tool_calls_total{" not in second.render()
