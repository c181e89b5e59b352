"""The official MCP client's OAuth flow against a real `kamiyo-mcp serve`, as Claude's connector runs it.

A real server process on a loopback port, a real SMTP inbox (aiosmtpd) for the sign-in mail, the
fake Stripe behind checkout, really signed webhooks. The client discovers OAuth from the 401,
registers (DCR, or a Client ID Metadata Document served by the test over HTTPS), and its redirect
handler is a headless person who signs in with the mailed link and approves.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from billing.http.webhooks import PATH as WEBHOOK_PATH
from tests.billing.http.delivery_harness import Inbox, shop_environment, signed_event
from tests.fakes.stripe_fake import FakeStripe, run_fake_stripe
from tests.support import ServerProcess, free_port
from tests.support_mcp import text_of
from tests.support_oauth import DocumentHost, HeadlessPerson, MemoryTokens, https_document_host

REDIRECT = "http://127.0.0.1:53682/callback"


class Live:
    """The running server and what the test drives it with."""

    def __init__(self, server: ServerProcess, fake: FakeStripe, inbox: Inbox, documents: DocumentHost) -> None:
        self.server, self.fake, self.inbox, self.documents = server, fake, inbox, documents
        self.url = server.url
        self.clock = int(time.time())

    async def post_event(self, event_type: str, obj: dict[str, Any]) -> None:
        self.clock += 1
        payload, headers = signed_event(event_type, obj, created=self.clock)
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(self.url + WEBHOOK_PATH, content=payload, headers=headers)
        assert answer.status_code == 200, answer.text

    async def pay(self, email: str, tier: str) -> str:
        """Checkout, payment at (fake) Stripe and its signed webhook; returns the subscription id."""
        async with httpx.AsyncClient(timeout=30) as http:
            opened = await http.post(self.url + "/api/billing/create-checkout-session", json={
                "tier": tier, "user_email": email, "success_url": self.url + "/billing/success",
                "cancel_url": self.url + "/pricing"})
        assert opened.status_code == 200, opened.text
        session = self.fake.complete_session(opened.json()["session_id"])
        await self.post_event("checkout.session.completed", session)
        return str(session["subscription"])

    async def delete_subscription(self, subscription_id: str) -> None:
        subscription = copy.deepcopy(self.fake.state.subscriptions[subscription_id])
        subscription.update(status="canceled", ended_at=int(time.time()))
        await self.post_event("customer.subscription.deleted", subscription)


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[DocumentHost]:
    with https_document_host(tmp_path) as host:
        yield host


@asynccontextmanager
async def running(tmp_path: Path, documents: DocumentHost, log_level: str) -> AsyncIterator[Live]:
    inbox = Inbox().start()
    with run_fake_stripe() as fake:
        port = free_port()
        env = shop_environment(tmp_path, fake, f"http://127.0.0.1:{port}", smtp_port=inbox.port,
                               SSL_CERT_FILE=str(documents.ca_file), KAMIYO_OAUTH_METADATA_PRIVATE_HOSTS="localhost",
                               KAMIYO_LOG_LEVEL=log_level)
        server = ServerProcess(env, port=port).start()
        try:
            yield Live(server, fake, inbox, documents)
        finally:
            server.stop()
            inbox.stop()
        assert "Traceback" not in server.logs(), server.logs()


@pytest.fixture
async def live(tmp_path: Path, documents: DocumentHost) -> AsyncIterator[Live]:
    async with running(tmp_path, documents, "INFO") as server:
        yield server


def client_metadata(name: str) -> OAuthClientMetadata:
    return OAuthClientMetadata(client_name=name, redirect_uris=[AnyUrl(REDIRECT)], token_endpoint_auth_method="none",
                               grant_types=["authorization_code", "refresh_token"], response_types=["code"])


def oauth_http(live: Live, person: HeadlessPerson, storage: MemoryTokens, *,
               metadata_url: str | None = None) -> tuple[httpx2.AsyncClient, OAuthClientProvider]:
    provider = OAuthClientProvider(live.url + "/mcp", client_metadata("Claude (test)"), storage,
                                   redirect_handler=person.redirect, callback_handler=person.callback,
                                   client_metadata_url=metadata_url)
    return httpx2.AsyncClient(auth=provider, timeout=30), provider


async def test_a_customer_connects_through_dynamic_registration_and_calls_tools_at_their_tier(live: Live) -> None:
    subscription_id = await live.pay("connector@example.com", "personal")
    person, storage = HeadlessPerson(live.inbox, "connector@example.com"), MemoryTokens()
    http, _ = oauth_http(live, person, storage)
    async with http, Client(streamable_http_client(live.url + "/mcp", http_client=http), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"get_account_status", "monitor_wallet", "search_crypto_exploits"} <= names
        status = await client.call_tool("get_account_status", {})
        assert not status.is_error and status.structured_content is not None
        assert status.structured_content["tier"] == "personal"
        assert status.structured_content["email"] == "connector@example.com"
        wallet = await client.call_tool("monitor_wallet", {"address": "0x" + "ab" * 20})
        assert wallet.is_error and "needs the team tier" in text_of(wallet)
    assert storage.client is not None and storage.client.client_id  # registered dynamically
    assert storage.tokens is not None and storage.tokens.refresh_token and storage.tokens.expires_in == 3600
    consent = next(page for page in person.pages if "/oauth/consent" in str(page.url))
    assert "Claude (test)" in consent.text and "127.0.0.1 (this computer)" in consent.text
    assert "personal" in consent.text
    assert subscription_id


async def test_a_client_with_a_metadata_document_connects_without_registering(live: Live) -> None:
    await live.pay("cimd@example.com", "team")
    metadata_url = live.documents.serve_json("/oauth/client.json", {
        "client_id": live.documents.url + "/oauth/client.json", "client_name": "Document Client",
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]},
        headers={"Cache-Control": "max-age=600"})
    person, storage = HeadlessPerson(live.inbox, "cimd@example.com"), MemoryTokens()
    http, _ = oauth_http(live, person, storage, metadata_url=metadata_url)
    async with http, Client(streamable_http_client(live.url + "/mcp", http_client=http), mode="legacy") as client:
        status = await client.call_tool("get_account_status", {})
        assert status.structured_content is not None and status.structured_content["tier"] == "team"
        wallet = await client.call_tool("monitor_wallet", {"address": "0x" + "cd" * 20})
        assert "tier" not in text_of(wallet)  # admitted at team: the tool itself answered (no data loaded)
        assert "No exploit data is loaded" in text_of(wallet)
    assert storage.client is not None and storage.client.client_id == metadata_url
    assert live.documents.hits.count("/oauth/client.json") == 1  # fetched once, then cached
    consent = next(page for page in person.pages if "/oauth/consent" in str(page.url))
    assert "Document Client" in consent.text


async def test_a_deleted_subscription_ends_the_apps_access_and_its_refresh(live: Live) -> None:
    subscription_id = await live.pay("ending@example.com", "team")
    person, storage = HeadlessPerson(live.inbox, "ending@example.com"), MemoryTokens()
    http, provider = oauth_http(live, person, storage)
    async with http, Client(streamable_http_client(live.url + "/mcp", http_client=http), mode="legacy") as client:
        assert not (await client.call_tool("get_account_status", {})).is_error
        first = storage.tokens
        assert first is not None
        # The client's clock says the hour is over: its next request refreshes (the grant lives: it works).
        provider.context.token_expiry_time = 1.0
        refreshed = await client.call_tool("get_account_status", {})
        assert not refreshed.is_error
        assert storage.tokens is not None and storage.tokens.access_token != first.access_token
        assert storage.tokens.refresh_token != first.refresh_token

        await live.delete_subscription(subscription_id)
        refused = await client.call_tool("get_account_status", {})
        assert refused.is_error and "subscription has ended" in text_of(refused)

    async with httpx.AsyncClient(timeout=30) as raw:
        assert storage.client is not None and storage.tokens is not None
        answer = await raw.post(live.url + "/token", data={
            "grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token,
            "client_id": storage.client.client_id})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant" and "subscription has ended" in answer.json()["error_description"]


async def test_an_apps_sign_in_logged_at_debug_shows_no_link_code_or_token(tmp_path: Path,
                                                                         documents: DocumentHost) -> None:
    async with running(tmp_path, documents, "DEBUG") as live:
        await live.pay("quiet@example.com", "team")
        person, storage = HeadlessPerson(live.inbox, "quiet@example.com"), MemoryTokens()
        http, provider = oauth_http(live, person, storage)
        async with http, Client(streamable_http_client(live.url + "/mcp", http_client=http), mode="legacy") as client:
            assert not (await client.call_tool("get_account_status", {})).is_error
            first = storage.tokens
            provider.context.token_expiry_time = 1.0  # the next request refreshes
            assert not (await client.call_tool("get_account_status", {})).is_error
        assert first is not None and storage.tokens is not None and person.returned_to is not None
        link = next(str(page.url) for page in person.pages if "/oauth/link" in str(page.url))
        secrets = {"sign-in link code": parse_qs(urlsplit(link).query)["code"][0],
                   "authorization code": parse_qs(urlsplit(person.returned_to).query)["code"][0],
                   "first access token": first.access_token, "first refresh token": str(first.refresh_token),
                   "access token": storage.tokens.access_token, "refresh token": str(storage.tokens.refresh_token)}
    log = live.server.logs()
    assert " DEBUG " in log  # DEBUG was really on
    assert sorted(name for name, value in secrets.items() if value in log) == []
