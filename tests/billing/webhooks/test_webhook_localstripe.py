"""A real lifecycle driven through localstripe: its own signed events reach our endpoint.

localstripe (PyPI) is started on a free port; its webhook is registered to our endpoint with our
secret. It speaks an old API version (items carry a `plan`, no `price`; the invoice has a top-level
`subscription`), binds every interface (it has no host option) and never emits
`customer.subscription.updated`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import stripe

from billing.access import Denial, Grant
from tests.billing.webhooks.webhook_support import SECRET, LiveApp
from tests.support import free_port, mint_token

PLAN = "plan_kamiyo_personal_ls"
WAIT_SECONDS = 20


@pytest.fixture
async def localstripe(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    log = open(tmp_path / "localstripe.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_listening(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


async def _wait_listening(url: str, process: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(WAIT_SECONDS):
        async with httpx.AsyncClient() as client:
            while True:
                assert process.poll() is None, "localstripe exited"
                try:
                    await client.get(url + "/v1/customers", headers={"Authorization": "Bearer sk_test_12345"})
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.05)  # polling a starting process, bounded by fail_after


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"STRIPE_PRICE_MCP_PERSONAL": PLAN}


async def stripe_call(call: Callable[[], Any]) -> Any:
    """A blocking SDK call, off the event loop that serves our endpoint."""
    return await anyio.to_thread.run_sync(call)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    with anyio.fail_after(WAIT_SECONDS):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)  # localstripe delivers about 1 s after the call; bounded by fail_after


async def subscribe(client: stripe.StripeClient, email: str, **customer: str) -> Any:
    """A customer of `email` who pays for PLAN with a card in localstripe: the subscription."""
    created = await stripe_call(lambda: client.v1.customers.create(params={"email": email, **customer}))
    await stripe_call(lambda: client.v1.plans.create(params={
        "id": PLAN, "amount": 1900, "currency": "usd", "interval": "month",
        "product": {"name": "KAMIYO personal"}}))
    card = await stripe_call(lambda: client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}}))
    await stripe_call(lambda: client.v1.payment_methods.attach(card.id, params={"customer": created.id}))
    await stripe_call(lambda: client.v1.customers.update(
        created.id, params={"invoice_settings": {"default_payment_method": card.id}}))
    return await stripe_call(lambda: client.v1.subscriptions.create(
        params={"customer": created.id, "items": [{"plan": PLAN}]}))


async def test_a_localstripe_subscription_is_created_then_canceled_and_its_token_revoked(
        localstripe: str, live_app: LiveApp) -> None:
    async with httpx.AsyncClient() as http:
        registered = await http.post(f"{localstripe}/_config/webhooks/kamiyo",
                                     data={"url": live_app.url + "/api/v1/webhooks/stripe", "secret": SECRET})
        assert registered.status_code == 200
    client = stripe.StripeClient("sk_test_12345", base_addresses={"api": localstripe}, max_network_retries=0)
    subscription = await subscribe(client, "Local.Stripe@Example.com", name="Local Stripe")
    store = live_app.runtime.store

    async def paid_subscription() -> Any:
        rows = {r.type: r.status for r in await store.list_events()}
        done = rows.get("customer.subscription.created") == "processed" and \
            rows.get("invoice.payment_succeeded") == "processed"
        return done and await store.find_user_id("local.stripe@example.com")

    user_id = await eventually(paid_subscription, "the subscription's events")
    token = await mint_token(live_app.runtime, user_id, subscription.id)
    token_id = live_app.runtime.authority.verify(token).claims.jti
    granted = await live_app.runtime.authority.authorize(token, "get_account_status")
    assert isinstance(granted, Grant) and granted.tier.name == "personal"

    await stripe_call(lambda: client.v1.subscriptions.cancel(subscription.id))

    async def revoked() -> Any:
        row = await store.get_token(token_id)
        return row is not None and row.revoked_at is not None and row

    row = await eventually(revoked, "the deletion webhook")
    refused = await live_app.runtime.authority.authorize(token, "get_account_status")
    assert row.revoked_reason == "subscription_ended" and row.status == "canceled"
    assert isinstance(refused, Denial) and refused.code == "subscription_ended"
    events = {r.type: (r.status, r.attempts) for r in await store.list_events()}
    assert events["customer.subscription.deleted"] == ("processed", 1)
    assert all(status in ("processed", "ignored") for status, _ in events.values())
