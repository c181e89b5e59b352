"""A whole paid flow against a real `kamiyo-mcp serve` process, remembering every secret it saw.

    flow = await run_paid_flow(server, fake, inbox)     # checkout → webhooks → mail → claim → MCP → rotate
    for name, value in flow.secrets.items(): ...        # grep logs and files for them

The server is a real process (its log is a file), Stripe is the fake on loopback, the welcome
mail arrives at a real SMTP server (aiosmtpd), webhooks are signed as Stripe signs them and the
MCP call goes through the official client.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.billing.http.delivery_harness import Inbox, claim_link
from tests.fakes.stripe_fake import FakeStripe
from tests.support import DATA, JWT_SECRET, ServerProcess, base_env, webhook_secret
from tests.support_mcp import mcp_session, text_of

SECRET_KEY = "sk_test_paidflow_" + "k" * 24
WEBHOOK_SECRET = webhook_secret("paidflow_" + "w" * 24)
PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"
EVENTS_DIR = DATA / "stripe" / "events"


def paid_flow_env(db: Path, fake: FakeStripe, smtp_port: int, **extra: str) -> dict[str, str]:
    return base_env(db, **{
        "KAMIYO_LOG_LEVEL": "DEBUG",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake.base_url,
        "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
        "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
        "KAMIYO_SUPPORT_EMAIL": "help@kamiyo.test",
        **extra,
    })


@dataclass
class PaidFlow:
    server: ServerProcess
    secrets: dict[str, str] = field(default_factory=dict)

    def leaks_in(self, text: str) -> list[str]:
        """The names of the secrets found in `text`."""
        return sorted(name for name, value in self.secrets.items() if value in text)


def signed(event_type: str, obj: dict[str, Any], created: int) -> tuple[bytes, dict[str, str]]:
    event = json.loads((EVENTS_DIR / f"{event_type}.json").read_text())
    event.update(id="evt_" + uuid.uuid4().hex[:24], created=created)
    event["data"] = {"object": obj}
    payload = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}


async def run_paid_flow(server: ServerProcess, fake: FakeStripe, inbox: Inbox) -> PaidFlow:
    """Buy, pay, get the mail, claim, call a tool, rotate: every request a customer's journey makes."""
    flow = PaidFlow(server, {"jwt secret": JWT_SECRET, "stripe key": SECRET_KEY, "webhook secret": WEBHOOK_SECRET})
    url = server.url
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        started = await client.post("/api/billing/create-checkout-session", json={
            "tier": "team", "user_email": "flow@example.com", "success_url": f"{url}/billing/success",
            "cancel_url": f"{url}/pricing"})
        assert started.status_code == 200, started.text
        session_id = started.json()["session_id"]
        flow.secrets["checkout session id"] = session_id

        session = fake.complete_session(session_id)
        subscription = copy.deepcopy(fake.state.subscriptions[session["subscription"]])
        created = int(time.time())
        for offset, (event_type, obj) in enumerate((("checkout.session.completed", session),
                                                    ("customer.subscription.created", subscription))):
            payload, headers = signed(event_type, obj, created + offset)
            answer = await client.post("/api/v1/webhooks/stripe", content=payload, headers=headers)
            assert answer.status_code == 200, answer.text

        # The success page as a browser loads it: the page, then its checkout lookup.
        assert (await client.get("/billing/success", params={"session_id": session_id})).status_code == 200
        assert (await client.get(f"/api/billing/checkout-session/{session_id}")).status_code == 200

        link = claim_link(await inbox.next())
        code = parse_qs(urlsplit(link).query)["code"][0]
        flow.secrets["claim code"] = code
        assert (await client.get("/claim", params={"code": code})).status_code == 200
        claimed = await client.post("/api/mcp/token/claim", json={"claim_code": code})
        assert claimed.status_code == 200, claimed.text
        token = claimed.json()["token"]
        flow.secrets["token"] = token
        flow.secrets["token signature"] = token.rsplit(".", 1)[-1]
        again = await client.post("/api/mcp/token/claim", json={"session_id": session_id})
        assert again.status_code == 410, again.text

        async with mcp_session(url, token) as mcp:
            status = await mcp.call_tool("get_account_status", {})
        assert not status.is_error, text_of(status)

        rotated = await client.post("/api/mcp/token/rotate", headers={"Authorization": f"Bearer {token}"})
        assert rotated.status_code == 200, rotated.text
        flow.secrets["rotated token"] = rotated.json()["token"]
        validated = await client.post("/api/mcp/validate",
                                      headers={"Authorization": f"Bearer {flow.secrets['rotated token']}"})
        assert validated.status_code == 200, validated.text
        refused = await client.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
    assert all(re.fullmatch(r"\S{8,}", value) for value in flow.secrets.values())
    return flow
