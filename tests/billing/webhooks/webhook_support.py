"""Helpers of the webhook tests: events from the shared fixtures, signed exactly as Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from billing.http.webhooks import PATH
from kamiyo_mcp.runtime import Runtime
from tests.support import DATA, base_env, webhook_secret

EVENTS_DIR = DATA / "stripe" / "events"
SECRET = webhook_secret("test_webhooks_0123456789")
PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"
SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
CUSTOMER = "cus_QXg1o8vcGmoR32"
EVENT_NAMES = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
)


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    stripe = {"STRIPE_WEBHOOK_SECRET": SECRET, "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
              "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE, "KAMIYO_LOG_LEVEL": "WARNING"}
    return base_env(tmp_path / "kamiyo.db", **{**stripe, **extra})


def raw_event(name: str) -> bytes:
    return (EVENTS_DIR / f"{name}.json").read_bytes()


def load_event(name: str) -> dict[str, Any]:
    return json.loads(raw_event(name))


def signed_headers(payload: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """`Stripe-Signature` exactly as Stripe computes it, over the raw bytes."""
    t = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def rewrite_ids(event: dict[str, Any], suffix: str) -> dict[str, Any]:
    """A copy of an event about another customer and subscription (ids end in `suffix`)."""
    olds = {SUBSCRIPTION, CUSTOMER, event["id"], event["data"]["object"]["id"]}
    pattern = re.compile("|".join(re.escape(old) for old in sorted(olds, key=len, reverse=True)))
    return json.loads(pattern.sub(lambda match: f"{match[0]}_{suffix}", json.dumps(event)))


@dataclass
class Webhooks:
    """Posts really signed webhook bodies to the endpoint; reads the database file directly."""

    client: httpx.AsyncClient
    runtime: Runtime
    db_path: Path

    async def post(self, body: bytes | dict[str, Any], **kwargs: Any) -> httpx.Response:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = kwargs.pop("headers", None) or signed_headers(payload)
        return await self.client.post(PATH, content=payload, headers=headers, **kwargs)

    async def post_fixture(self, name: str) -> httpx.Response:
        return await self.post(raw_event(name))

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()


@dataclass
class LiveApp:
    url: str
    runtime: Runtime

    async def deliver(self, name: str) -> httpx.Response:
        payload = raw_event(name)
        async with httpx.AsyncClient(base_url=self.url) as client:
            return await client.post(PATH, content=payload, headers=signed_headers(payload))
