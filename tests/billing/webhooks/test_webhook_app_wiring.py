"""The whole app (`create_app`) serves the Stripe webhook and `/metrics`, and counts tool calls."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from billing.http.webhooks import PATH
from kamiyo_mcp.app import create_app
from kamiyo_mcp.settings import load_settings
from tests.billing.webhooks.webhook_support import SUBSCRIPTION, LiveApp, environment
from tests.support import mint_token
from tests.support_mcp import mcp_session


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_create_app_routes_the_stripe_webhook_and_metrics(tmp_path: Path) -> None:
    paths = {getattr(route, "path", None) for route in create_app(load_settings(environment(tmp_path))).routes}

    assert {PATH, "/metrics"} <= paths


async def test_tool_calls_and_webhooks_are_counted_by_the_app(live_app: LiveApp) -> None:
    for name in ("checkout.session.completed", "customer.subscription.created"):
        assert (await live_app.deliver(name)).status_code == 200
    user_id = await live_app.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    token = await mint_token(live_app.runtime, user_id, SUBSCRIPTION)
    async with mcp_session(live_app.url, token) as client:
        await client.call_tool("get_account_status", {})
        assert (await live_app.deliver("customer.subscription.deleted")).status_code == 200
        await client.call_tool("get_account_status", {})  # refused inside the open session

    async with httpx.AsyncClient(base_url=live_app.url) as http:
        found = samples((await http.get("/metrics")).text)

    tool = ("tool", "get_account_status")
    assert found[("kamiyo_tool_calls_total", (("outcome", "granted"), ("tier", "personal"), tool))] == 1
    assert found[("kamiyo_tool_calls_total", (("outcome", "subscription_ended"), ("tier", "none"), tool))] == 1
    assert found[("kamiyo_webhook_deliveries_total",
                  (("event_type", "customer.subscription.deleted"), ("outcome", "processed")))] == 1
    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "personal")))] == 0
