"""A live shop for the delivery tests: the real app on a loopback port, a fake Stripe, a real SMTP server.

    async with running_shop(tmp_path, fake, inbox) as shop:
        paid = await shop.pay("buyer@example.com", "team")       # checkout, Stripe completes, webhook
        mail = await inbox.next()                                # the welcome email, over SMTP

The app is `create_app(load_settings(env))` exactly as `serve` runs it: its webhook queues the
welcome mail and its lifespan's outbox sender sends it.
"""

from __future__ import annotations

import asyncio
import copy
import email
import email.policy
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from billing.http.webhooks import PATH as WEBHOOK_PATH
from kamiyo_mcp.app import create_app
from kamiyo_mcp.delivery import DeliveryWiring
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.http.app_harness import PERSONAL_PRICE, SECRET_KEY, TEAM_PRICE, WEBHOOK_SECRET
from tests.fakes.stripe_fake import FakeStripe
from tests.support import DATA, JWT_SECRET, free_port

EVENTS_DIR = DATA / "stripe" / "events"
CLAIM_LINK = re.compile(r"https?://\S+/claim\?code=[A-Za-z0-9_-]+")


class Inbox:
    """A real SMTP server (aiosmtpd, its own thread) on a loopback port; messages reach the test's loop."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Queue[EmailMessage] | None = None
        self._controller: Controller | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        if self._loop is not None and self._arrived is not None:
            self._loop.call_soon_threadsafe(self._arrived.put_nowait, message)
        return "250 Message accepted for delivery"

    def start(self) -> Inbox:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Queue()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def next(self, timeout: float = 15) -> EmailMessage:
        """The next message to arrive (bounded wait)."""
        assert self._arrived is not None, "the inbox is not started"
        with anyio.fail_after(timeout):
            return await self._arrived.get()


def claim_link(message: EmailMessage) -> str:
    """The claim link of a welcome email, from its plain-text part (the HTML part must hold the same)."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    (link,) = set(CLAIM_LINK.findall(text.get_content()))
    assert link in html.get_content()
    return link


def shop_environment(tmp_path: Path, fake: FakeStripe, url: str, *, smtp_port: int | None, **extra: str
                     ) -> dict[str, str]:
    env = {
        "KAMIYO_DATABASE_URL": str(tmp_path / "kamiyo.db"),
        "MCP_JWT_SECRET": JWT_SECRET,
        "KAMIYO_INTEL_SOURCES": "",
        "KAMIYO_LOG_LEVEL": "WARNING",
        "KAMIYO_PUBLIC_URL": url,
        "KAMIYO_ALLOWED_REDIRECT_ORIGINS": url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
        "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE,
        "EMAIL_FROM": "KAMIYO <no-reply@kamiyo.test>",
        "KAMIYO_SUPPORT_EMAIL": "help@kamiyo.test",
    }
    if smtp_port is not None:
        env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_STARTTLS": "false"}
    return env | extra


def signed_event(event_type: str, obj: dict[str, Any], *, created: int) -> tuple[bytes, dict[str, str]]:
    """A Stripe event of `event_type` about `obj` (from Stripe's own example event), signed as Stripe signs it."""
    event = json.loads((EVENTS_DIR / f"{event_type}.json").read_text())
    event.update(id="evt_" + uuid.uuid4().hex[:24], created=created)
    event["data"] = {"object": obj}
    payload = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}


@dataclass
class Paid:
    session_id: str
    subscription_id: str
    customer_id: str
    email: str


@dataclass
class Shop:
    url: str
    app: Starlette
    runtime: Runtime
    settings: Settings
    wiring: DeliveryWiring
    fake: FakeStripe
    client: httpx.AsyncClient
    event_clock: list[int] = field(default_factory=lambda: [int(time.time())])

    async def checkout(self, email_address: str, tier: str) -> dict[str, Any]:
        response = await self.client.post("/api/billing/create-checkout-session", json={
            "tier": tier, "user_email": email_address, "success_url": f"{self.url}/billing/success",
            "cancel_url": f"{self.url}/pricing"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def complete(self, session_id: str) -> Paid:
        """Stripe completes the session (the customer paid) and its webhook arrives."""
        session = self.fake.complete_session(session_id)
        answer = await self.post_event("checkout.session.completed", session)
        assert answer.status_code == 200, answer.text
        return Paid(session_id, session["subscription"], session["customer"], session["customer_details"]["email"])

    async def pay(self, email_address: str, tier: str = "personal") -> Paid:
        return await self.complete((await self.checkout(email_address, tier))["session_id"])

    async def end_subscription(self, paid: Paid) -> None:
        """Stripe deletes the subscription and says so by webhook."""
        subscription = copy.deepcopy(self.fake.state.subscriptions[paid.subscription_id])
        subscription.update(status="canceled", ended_at=int(time.time()))
        answer = await self.post_event("customer.subscription.deleted", subscription)
        assert answer.status_code == 200, answer.text

    async def post_event(self, event_type: str, obj: dict[str, Any]) -> httpx.Response:
        self.event_clock[0] += 1
        payload, headers = signed_event(event_type, obj, created=self.event_clock[0])
        return await self.client.post(WEBHOOK_PATH, content=payload, headers=headers)

    async def claim(self, **body: str) -> httpx.Response:
        return await self.client.post("/api/mcp/token/claim", json=body)


@asynccontextmanager
async def running_shop(tmp_path: Path, fake: FakeStripe, *, smtp_port: int | None,
                       **extra_env: str) -> AsyncIterator[Shop]:
    """The real app serving on a loopback port, with everything token delivery needs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = load_settings(shop_environment(tmp_path, fake, url, smtp_port=smtp_port, **extra_env))
        app = create_app(settings)
        runtime: Runtime = app.state.runtime
        wiring: DeliveryWiring = app.state.delivery
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            with anyio.fail_after(10):
                while not server.started:
                    await asyncio.sleep(0.01)  # polling uvicorn's start flag, bounded by fail_after
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield Shop(url, app, runtime, settings, wiring, fake, client)
        finally:
            server.should_exit = True
            with anyio.fail_after(10):
                await task
