"""The real app (create_app) in-process, driven like a browser and an OAuth client at once.

    async with oauth_app(tmp_path) as server:
        client = await server.register()                          # DCR, a public loopback client
        page = await server.authorize(client["client_id"])        # 302 → the sign-in page
        code = await server.token_sign_in_and_allow(page, token)  # sign in with a KAMIYO token, Allow
        tokens = await server.exchange(code, client["client_id"])

`browser` keeps cookies like a browser; every request comes from CLIENT_IP. With `mail=True` the
server sends through a real SMTP server (aiosmtpd) and `links_to` reads the sign-in links from it
(a link's secret exists only in its mail); without, the mails stay queued in the outbox.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette

from billing.store.outbox_sql import OutboxRow
from kamiyo_mcp.app import create_app
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.http.delivery_harness import Inbox
from tests.support import JWT_SECRET
from tests.support_oauth import form_to, sign_in_link

PUBLIC_URL = "https://kamiyo.test"
RESOURCE = PUBLIC_URL + "/mcp"
REDIRECT = "http://127.0.0.1:40123/callback"
VERIFIER = "dBjftJeZ4CVP-mJ92K9ZYfYkm1yaE6VT6SRkxr8Er0M"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
CLIENT_IP = "198.51.100.7"
SIGN_IN_SUBJECT = "Your KAMIYO sign-in link"


def oauth_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "KAMIYO_DATABASE_URL": str(tmp_path / "kamiyo.db"),
        "MCP_JWT_SECRET": JWT_SECRET,
        "KAMIYO_INTEL_SOURCES": "",
        "KAMIYO_LOG_LEVEL": "WARNING",
        "KAMIYO_PUBLIC_URL": PUBLIC_URL,
        "KAMIYO_OAUTH_SIGN_IN_RATE_PER_MINUTE": "1000",
        "KAMIYO_OAUTH_REGISTER_RATE_PER_MINUTE": "1000",
        **extra,
    }


@dataclass
class OAuthServer:
    app: Starlette
    runtime: Runtime
    settings: Settings
    browser: httpx.AsyncClient
    stack: AsyncExitStack
    inbox: Inbox | None = None
    backlog: list[EmailMessage] = field(default_factory=list)

    def new_browser(self, ip: str = CLIENT_IP) -> httpx.AsyncClient:
        """Another browser (its own cookie jar), e.g. an attacker's."""
        transport = httpx.ASGITransport(app=self.app, client=(ip, 41000))
        return self.stack.push_async_exit(httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL))

    async def issue(self, email: str, tier: str = "team") -> str:
        return (await self.runtime.authority.issue_grant(email, tier)).token

    async def register(self, **metadata: Any) -> dict[str, Any]:
        body = {"client_name": "Test App", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                **metadata}
        answer = await self.browser.post("/register", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def authorize(self, client_id: str, *, browser: httpx.AsyncClient | None = None, **params: str
                        ) -> httpx.Response:
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "state-1",
                 "code_challenge": CHALLENGE, "code_challenge_method": "S256", "resource": RESOURCE, **params}
        return await (browser or self.browser).get("/authorize", params=query, headers={"Accept": "text/html"})

    async def sign_in_page(self, client_id: str, browser: httpx.AsyncClient | None = None) -> httpx.Response:
        started = await self.authorize(client_id, browser=browser)
        assert started.status_code == 302, started.text
        page = await (browser or self.browser).get(started.headers["location"])
        assert page.status_code == 200, page.text
        return page

    async def token_sign_in(self, page: httpx.Response, secret: str,
                            browser: httpx.AsyncClient | None = None) -> httpx.Response:
        form = form_to(page.text, "/oauth/sign-in/secret")
        return await (browser or self.browser).post(form.action, data=form.submit(secret=secret))

    async def consent_page(self, client_id: str, token: str) -> httpx.Response:
        signed_in = await self.token_sign_in(await self.sign_in_page(client_id), token)
        assert signed_in.status_code == 303, signed_in.text
        consent = await self.browser.get(signed_in.headers["location"])
        assert consent.status_code == 200, consent.text
        return consent

    async def decide(self, consent: httpx.Response, button: str = "Allow",
                     browser: httpx.AsyncClient | None = None) -> httpx.Response:
        form = form_to(consent.text, "/oauth/consent")
        return await (browser or self.browser).post(form.action, data=form.submit(button))

    async def code_for(self, client_id: str, token: str) -> str:
        answer = await self.decide(await self.consent_page(client_id, token))
        assert answer.status_code == 303, answer.text
        return query_of(answer.headers["location"])["code"]

    async def exchange(self, code: str, client_id: str, **over: str) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
                "code_verifier": VERIFIER, "resource": RESOURCE, **over}
        return await self.browser.post("/token", data={k: v for k, v in data.items() if v is not None})

    async def refresh(self, refresh_token: str, client_id: str, **over: str) -> httpx.Response:
        return await self.browser.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                       "client_id": client_id, **over})

    async def tokens(self, email: str = "owner@example.com", tier: str = "team") -> tuple[str, dict[str, Any]]:
        """A registered client and the tokens a full authorization gave it."""
        client_id = (await self.register())["client_id"]
        answer = await self.exchange(await self.code_for(client_id, await self.issue(email, tier)), client_id)
        assert answer.status_code == 200, answer.text
        return client_id, dict(answer.json())

    async def mails_to(self, email: str, count: int = 1, *, subject: str = SIGN_IN_SUBJECT) -> list[EmailMessage]:
        """The next `count` mails with `subject` that reached `email` over SMTP (bounded waits)."""
        assert self.inbox is not None, "open the app with mail=True"
        found: list[EmailMessage] = []
        while len(found) < count:
            mine = [m for m in self.backlog if m["To"] == email and m["Subject"] == subject]
            if mine:
                self.backlog.remove(mine[0])
                found.append(mine[0])
                continue
            self.backlog.append(await self.inbox.next())
        return found

    async def links_to(self, email: str, count: int = 1) -> list[str]:
        """The sign-in links of the next `count` mails to `email`."""
        return [sign_in_link(message) for message in await self.mails_to(email, count)]

    async def queued_to(self, email: str) -> list[OutboxRow]:
        """The sign-in mails queued for `email` (sent or not), oldest first."""
        return [row for row in await self.runtime.store.list_outbox()
                if row.recipient == email and row.kind == "oauth_sign_in"]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@asynccontextmanager
async def oauth_app(tmp_path: Path, *, mail: bool = False, **env: str) -> AsyncIterator[OAuthServer]:
    async with AsyncExitStack() as stack:
        inbox: Inbox | None = None
        if mail:
            inbox = Inbox().start()
            stack.callback(inbox.stop)
            env = {**env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(inbox.port), "SMTP_STARTTLS": "false"}
        settings = load_settings(oauth_environment(tmp_path, **env))
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        browser = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000)), base_url=PUBLIC_URL))
        yield OAuthServer(app, app.state.runtime, settings, browser, stack, inbox)
