"""GET /api/billing/checkout-health, and billing switched off without STRIPE_SECRET_KEY."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from billing.http.checkout import StripeGatewaySlot, billing_routes
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.billing.http.app_harness import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    assert_error_shape,
    checkout_body,
    environment,
    running_app,
)
from tests.fakes.stripe_fake import FakeStripe


async def test_health_reports_mode_priced_tiers_webhook_secret_and_database_and_no_secret(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.client.get("/api/billing/checkout-health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "stripe_mode": "test",
        "configured_tiers": ["personal", "team"],
        "webhook_secret_configured": True,
        "database": "ok",
    }
    for secret in (SECRET_KEY, SECRET_KEY[:12], WEBHOOK_SECRET, "whsec_", "sk_", "price_"):
        assert secret not in response.text
    assert fake.requests == []  # health never spends a Stripe call


async def test_health_tells_a_live_key_and_an_unpriced_setup_apart(tmp_path: Path, fake: FakeStripe) -> None:
    env = environment(tmp_path, fake, STRIPE_SECRET_KEY="sk_live_" + "not_a_real_key_" + "0" * 6)
    for name in ("STRIPE_PRICE_MCP_PERSONAL", "STRIPE_PRICE_MCP_TEAM", "STRIPE_WEBHOOK_SECRET"):
        del env[name]
    async with running_app(env, fake) as billing:
        response = await billing.client.get("/api/billing/checkout-health")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "stripe_mode": "live", "configured_tiers": [],
                               "webhook_secret_configured": False, "database": "ok"}
    assert "sk_live" not in response.text


async def test_without_a_stripe_key_billing_answers_503_and_mcp_still_serves(tmp_path: Path, fake: FakeStripe) -> None:
    env = environment(tmp_path, fake)
    del env["STRIPE_SECRET_KEY"]
    async with running_app(env, fake) as billing:
        token = (await billing.runtime.authority.issue_grant("user@example.com", "team")).token
        answers = [
            await billing.checkout(),
            await billing.client.get("/api/billing/checkout-session/cs_test_abc"),
            await billing.portal(token),
            await billing.client.get("/api/billing/checkout-health"),
        ]
        health = await billing.client.get("/healthz")
        validate = await billing.client.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
        contract = await billing.client.get("/openapi.json")

    for answer in answers:
        body = assert_error_shape(answer, 503, "billing_not_configured")
        assert "billing is not configured" in body["error"]["message"]
        assert "STRIPE_SECRET_KEY" in body["error"]["message"]
    assert answers[-1].json()["status"] == "not_configured"
    assert "stripe_mode" not in answers[-1].json()
    assert health.status_code == 200 and validate.json()["valid"] is True
    assert contract.status_code == 200
    assert fake.requests == []


async def test_an_unreachable_database_makes_health_answer_503_with_what_it_knows(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        await billing.runtime.store.close()  # the lifespan's own close tolerates a closed store
        response = await billing.client.get("/api/billing/checkout-health")

    body = assert_error_shape(response, 503, "database_unavailable")
    assert body["status"] == "unavailable" and body["database"] == "unavailable"
    assert body["stripe_mode"] == "test"


async def test_billing_answers_503_while_the_stripe_gateway_is_not_open(env: dict[str, str], fake: FakeStripe) -> None:
    settings = load_settings(env)
    closed_slot = StripeGatewaySlot(settings.billing)  # never opened: as before or after the lifespan
    async with Runtime(settings).opened() as runtime:
        app = Starlette(routes=billing_routes(lambda: runtime.authority, settings.billing, closed_slot))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.post("/api/billing/create-checkout-session", json=checkout_body())

    assert_error_shape(response, 503, "billing_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert fake.requests == []
