"""`/metrics`: webhook deliveries and timings, active subscriptions by tier, tool calls; operators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kamiyo_mcp.app import create_app
from kamiyo_mcp.settings import load_settings
from tests.billing.webhooks.webhook_support import environment, raw_event, signed_headers
from tests.support import ServerProcess, base_env, cli
from tests.support_mcp import mcp_session, text_of

METRICS_TOKEN = "metrics-" + "m" * 32


@asynccontextmanager
async def local_app(tmp_path: Path, *, client: str = "127.0.0.1", host: str = "127.0.0.1:8000",
                    **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (create_app, its lifespan) reached from `client` with `Host: host` (entered inside a test:
    the MCP session manager's task group must be left by the task that entered it)."""
    app = create_app(load_settings(environment(tmp_path, **env)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            yield http


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def post(client: httpx.AsyncClient, name: str) -> None:
    payload = raw_event(name)
    await client.post("/api/v1/webhooks/stripe", content=payload, headers=signed_headers(payload))


async def test_metrics_count_deliveries_by_type_and_outcome_and_active_subscriptions_by_tier(tmp_path: Path) -> None:
    async with local_app(tmp_path) as client:
        await post(client, "customer.subscription.created")
        await post(client, "customer.subscription.created")
        await client.post("/api/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})

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


async def test_a_deleted_subscription_leaves_the_active_gauge(tmp_path: Path) -> None:
    async with local_app(tmp_path) as client:
        await post(client, "customer.subscription.created")
        await post(client, "customer.subscription.deleted")

        found = samples((await client.get("/metrics")).text)

    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "personal")))] == 0
    assert found[("kamiyo_active_subscriptions", (("kind", "stripe"), ("tier", "team")))] == 0


async def test_a_real_tool_call_is_counted_by_tool_tier_and_outcome(
        tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    env = base_env(tmp_path / "kamiyo.db")
    token = cli(["token", "issue", "--email", "counted@example.com", "--tier", "team"], env).stdout.strip()
    server = server_factory(env).start()
    async with mcp_session(server.url, token) as client:
        granted = await client.call_tool("get_account_status", {})
    assert not granted.is_error, text_of(granted)

    found = samples(httpx.get(server.url + "/metrics", timeout=10).text)

    tool_calls = {labels: value for (name, labels), value in found.items() if name == "kamiyo_tool_calls_total"}
    assert tool_calls == {(("outcome", "granted"), ("tier", "team"), ("tool", "get_account_status")): 1}


def test_two_metric_sets_do_not_share_counters() -> None:
    from kamiyo_mcp.metrics import create_metrics

    first, second = create_metrics(), create_metrics()
    first.observe_tool_call("t", "team", "granted")

    assert b'kamiyo_tool_calls_total{outcome="granted",tier="team",tool="t"} 1.0' in first.render()
    assert b"kamiyo_tool_calls_total{" not in second.render()


# ---- who may read them ----------------------------------------------------------------------------

async def scrape(tmp_path: Path, *, client: str = "127.0.0.1", host: str = "127.0.0.1:8000",
                 headers: dict[str, str] | None = None, **env: str) -> httpx.Response:
    async with local_app(tmp_path, client=client, host=host, **env) as http:
        return await http.get("/metrics", headers=headers or {})


async def test_without_a_metrics_token_only_a_local_scraper_is_answered(tmp_path: Path) -> None:
    assert (await scrape(tmp_path)).status_code == 200
    assert (await scrape(tmp_path, client="::1", host="[::1]:8000")).status_code == 200
    refused = [
        await scrape(tmp_path, client="203.0.113.5"),  # a remote client
        await scrape(tmp_path, headers={"X-Forwarded-For": "203.0.113.5"}),  # a local proxy's client
        await scrape(tmp_path, host="attacker.example"),  # a rebound name in a local browser
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "KAMIYO_METRICS_TOKEN" in response.json()["error"]["message"]
        assert "kamiyo_active_subscriptions" not in response.text


async def test_with_a_metrics_token_the_bearer_header_is_required_from_everywhere(tmp_path: Path) -> None:
    token = {"KAMIYO_METRICS_TOKEN": METRICS_TOKEN}
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await scrape(tmp_path, client="203.0.113.5", host="mcp.example.com", headers=bearer,
                         **token)).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong-" + "w" * 32}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        response = await scrape(tmp_path, headers=headers, **token)  # even from loopback
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert METRICS_TOKEN not in response.text
