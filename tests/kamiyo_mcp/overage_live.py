"""Helpers of the live upgrade and overage tests: a real `serve` process on the fake Stripe, signed
webhooks to it, following an upgrade link as a browser would, and reading its store."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from billing.http.webhooks import PATH as WEBHOOK_PATH
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.clock_server import set_clock
from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe, FakeStripeServer
from tests.support import DATA, ServerProcess, base_env, cli, mint_token, webhook_secret

CUSTOMER = "cus_QXg1o8vcGmoR32"  # seeded in the fake (example@example.com)
PERSONAL_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"  # seeded in the fake, on the personal price
PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"
WEBHOOK_SECRET = webhook_secret("live_overage_0123456789")
WALLET = "0x" + "ab" * 20
UPGRADE_URL = re.compile(r"https?://\S+/billing/upgrade\?code=[A-Za-z0-9_%-]+")
# Team: 3 calls a day, $0.10 per overage call, so the default $1 cap pays for 10 overage calls.
TIERS_TOML = "[team]\ncalls_per_day = 3\noverage_usd_per_1000_calls = 100.0\noverage_cap_usd = 1\n"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    server = FakeStripeServer()
    fake = server.start()
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
    try:
        yield fake
    finally:
        server.stop()


@dataclass
class Shop:
    """A server process selling on the fake Stripe, with its database, environment and clock file."""

    server: ServerProcess
    fake: FakeStripe
    db: Path
    env: dict[str, str]
    clock: Path

    def set_time(self, now: float) -> None:
        set_clock(self.clock, now)

    async def deliver(self, event: dict[str, Any]) -> None:
        payload = json.dumps(event).encode()
        t = int(time.time())
        signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(base_url=self.server.url) as http:
            answer = await http.post(WEBHOOK_PATH, content=payload, headers={
                "Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text

    async def subscribe(self, subscription_id: str, tier: str) -> str:
        """Stripe's events for the fake's subscription reach the server; a token is minted for it."""
        await self.deliver({"id": f"evt_customer_{subscription_id}", "type": "customer.created",
                            "created": int(time.time()) - 60, "data": {"object": self.fake.state.customers[CUSTOMER]}})
        await self.deliver(self.fake.subscription_event(subscription_id, "customer.subscription.created"))
        async with Runtime(load_settings(self.env)).opened() as runtime:
            user_id = await runtime.store.find_user_id("example@example.com")
            assert user_id is not None
            return await mint_token(runtime, user_id, subscription_id, tier)

    async def follow(self, url: str) -> None:
        """A person follows the upgrade link: the page, its button, Stripe's portal confirmation, and
        Stripe's signed `customer.subscription.updated` reaching the server."""
        async with httpx.AsyncClient() as browser:
            shown = await browser.get(url)
            assert shown.status_code == 200 and "Continue to Stripe" in shown.text
            code = url.split("code=", 1)[1]
            followed = await browser.post(url.split("?", 1)[0], data={"code": code})
            assert followed.status_code == 303, followed.text
        portal_session = followed.headers["location"].rsplit("test_", 1)[-1]
        await self.deliver(self.fake.complete_portal_flow(portal_session))

    async def turn_on_overage(self, url: str, subscription_id: str) -> None:
        """A person follows a quota refusal's overage link: the page, its button (the server adds the
        metered item in Stripe), and Stripe's signed `customer.subscription.updated` reaching the server."""
        async with httpx.AsyncClient() as browser:
            shown = await browser.get(url)
            assert shown.status_code == 200 and "Turn on overage" in shown.text, shown.text
            followed = await browser.post(url.split("?", 1)[0], data={"code": url.split("code=", 1)[1]})
            assert followed.status_code == 303 and followed.headers["location"].endswith("overage=on"), followed.text
        await self.deliver(self.fake.subscription_event(subscription_id))

    async def buy(self, url: str) -> str:
        """A person with an operator grant follows the link: the page, its button, paying in Stripe
        Checkout, and Stripe's signed `checkout.session.completed` reaching the server. Returns the
        Checkout Session's id (what the success page picks the new token up with)."""
        async with httpx.AsyncClient() as browser:
            shown = await browser.get(url)
            assert shown.status_code == 200 and "Stripe Checkout" in shown.text
            followed = await browser.post(url.split("?", 1)[0], data={"code": url.split("code=", 1)[1]})
            assert followed.status_code == 303, followed.text
        session_id = followed.headers["location"].rsplit("/", 1)[-1]
        session = self.fake.complete_session(session_id)
        await self.deliver({"id": f"evt_paid_{session_id[-12:]}", "type": "checkout.session.completed",
                            "created": int(time.time()), "data": {"object": session}})
        return session_id

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()


def shop_env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS_TOML)
    return base_env(
        tmp_path / "kamiyo.db", KAMIYO_LOG_LEVEL="WARNING", STRIPE_SECRET_KEY="sk_test_live_overage_0123",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=fake.base_url, STRIPE_PRICE_MCP_PERSONAL=PERSONAL_PRICE,
        STRIPE_PRICE_MCP_TEAM=TEAM_PRICE, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE,
        STRIPE_METER_EVENT_NAME=METER_EVENT_NAME, KAMIYO_TIERS_FILE=str(tiers))


def open_shop(tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess], *,
              intel: bool = False) -> Shop:
    """The server; with `intel`, the incident data loaded first (for the tools that read it)."""
    env = shop_env(tmp_path, fake)
    if intel:
        loaded = cli(["ingest", str(DATA / "exploits" / "exploits.jsonl"), str(DATA / "exploits" / "addresses.jsonl")],
                     env, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
    clock = tmp_path / "clock"
    set_clock(clock, time.time())
    server = server_factory(env, clock_file=clock).start()
    return Shop(server, fake, tmp_path / "kamiyo.db", env, clock)


def upgrade_link(text: str) -> str:
    found = UPGRADE_URL.search(text)
    assert found is not None, text
    return found[0]


async def until(condition: Any, *, seconds: float = 30, message: str = "") -> None:
    """Poll `condition()` until it holds (a live server's background work), bounded."""
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.05)  # polling another process's progress, bounded by fail_after
