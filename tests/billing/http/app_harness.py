"""The real app (create_app) with the billing and webhook routes added, on a fake Stripe, in-process.

Tests open it with `async with running_app(env, fake) as billing:` inside the test: the MCP session
manager in the app's lifespan holds a task group, which must be left by the task that entered it
(an async fixture's setup and teardown run in different tasks).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from billing.http.checkout import StripeGatewaySlot, billing_routes
from billing.http.webhooks import PATH as WEBHOOK_PATH
from kamiyo_mcp.app import create_app
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.fakes.stripe_fake import FakeStripe
from tests.support import DATA, JWT_SECRET, webhook_secret

EVENTS_DIR = DATA / "stripe" / "events"
PUBLIC_URL = "https://kamiyo.test"
SECRET_KEY = "sk_test_billing_http_0123456789"
WEBHOOK_SECRET = webhook_secret("billing_http_0123456789")
PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"
SEEDED_CUSTOMER = "cus_QXg1o8vcGmoR32"
SEEDED_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
FROZEN_NOW = 1_900_000_040.0  # 20 s into a minute: the rate limiter's window never turns during a test
CLIENT_IP = "203.0.113.9"


def environment(tmp_path: Path, fake: FakeStripe, **extra: str) -> dict[str, str]:
    return {
        "KAMIYO_DATABASE_URL": str(tmp_path / "kamiyo.db"),
        "MCP_JWT_SECRET": JWT_SECRET,
        "KAMIYO_INTEL_SOURCES": "",
        "KAMIYO_LOG_LEVEL": "WARNING",
        "KAMIYO_PUBLIC_URL": PUBLIC_URL,
        "KAMIYO_ALLOWED_REDIRECT_ORIGINS": f"{PUBLIC_URL},https://app.kamiyo.test",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
        "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE,
        **extra,
    }


def checkout_body(**overrides: Any) -> dict[str, Any]:
    return {
        "tier": "personal",
        "user_email": "Buyer@Example.com",
        "success_url": f"{PUBLIC_URL}/billing/success",
        "cancel_url": f"{PUBLIC_URL}/pricing",
        **overrides,
    }


def signed_webhook(payload: bytes) -> dict[str, str]:
    t = int(time.time())
    sig = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one JSON error shape: {"error": {"code", "message", "status"}, ...extra}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body["error"]) == {"code", "message", "status"}
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text and SECRET_KEY not in response.text
    if code is not None:
        assert body["error"]["code"] == code
    return body


@dataclass
class Billing:
    """The running app: an HTTP client on it, its runtime, settings and the fake Stripe behind it."""

    client: httpx.AsyncClient
    runtime: Runtime
    settings: Settings
    fake: FakeStripe
    client_for: Callable[[str], httpx.AsyncClient]

    async def checkout(self, body: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.client.post("/api/billing/create-checkout-session", json=body or checkout_body(),
                                      **kwargs)

    async def portal(self, token: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post("/api/billing/create-portal-session", json=body or {}, headers=headers)

    async def post_event(self, name: str) -> httpx.Response:
        payload = (EVENTS_DIR / f"{name}.json").read_bytes()
        return await self.client.post(WEBHOOK_PATH, content=payload, headers=signed_webhook(payload))

    def stripe_calls(self, method: str, path: str) -> list[Any]:
        return self.fake.requests_to(method, path)


@asynccontextmanager
async def running_app(env: dict[str, str], fake: FakeStripe) -> AsyncIterator[Billing]:
    """`create_app(load_settings(env))` with its lifespan running.

    The billing routes are placed once more in front of the app's own, identical but for a frozen
    rate-limiter clock, so limit tests never straddle a minute; the app's own wiring is tested by
    tests/kamiyo_mcp/test_http_server.py and the webhook wiring test.
    """
    settings = load_settings(env)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    slot = StripeGatewaySlot(settings.billing)
    app.router.routes[0:0] = billing_routes(lambda: runtime.authority, settings.billing, slot,
                                            clock=lambda: FROZEN_NOW)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        await stack.enter_async_context(slot.opened())

        def client_for(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            return stack.push_async_exit(httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL))

        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000)), base_url=PUBLIC_URL)
        )
        yield Billing(client, runtime, settings, fake, client_for)


def stripe_params(billing: Billing) -> dict[str, Any]:
    """The parameters of the one checkout session the fake Stripe received."""
    (request,) = billing.stripe_calls("POST", "/v1/checkout/sessions")
    return request.params
