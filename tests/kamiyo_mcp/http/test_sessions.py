"""MCP sessions: a dead token opens none, each token holds a capped number, idle ones end."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from billing.tiers import TIERS
from kamiyo_mcp.http.sessions import SessionLimits
from kamiyo_mcp.settings import SettingsError, load_settings
from tests.kamiyo_mcp.live import Live, live_app
from tests.support import base_env

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "1"}}}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


async def initialize(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {token}"})


async def ping(http: httpx.AsyncClient, token: str, session_id: str) -> int:
    response = await http.post("/mcp", json=PING, headers={**ACCEPT, "Authorization": f"Bearer {token}",
                                                           "Mcp-Session-Id": session_id,
                                                           "Mcp-Protocol-Version": "2025-11-25"})
    return response.status_code


async def grant(live: Live, email: str, tier: str) -> str:
    return (await live.runtime.authority.issue_grant(email, tier)).token


async def test_a_dead_token_cannot_use_up_the_sessions_of_paying_customers(tmp_path: Path) -> None:
    async with live_app(tmp_path / "k.db", KAMIYO_MAX_SESSIONS="15") as live:
        dead = (await live.runtime.authority.issue_grant("dead@example.com", "enterprise"))
        await live.runtime.authority.revoke(dead.token_id, reason="subscription deleted")
        heavy, paying = await grant(live, "heavy@example.com", "personal"), await grant(live, "pay@example.com", "team")
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            refused = [await initialize(http, dead.token) for _ in range(40)]
            opened = [await initialize(http, heavy) for _ in range(25)]
            customer = await initialize(http, paying)
            sessions = [r.headers["mcp-session-id"] for r in opened]
            alive = [await ping(http, heavy, session) for session in sessions]
    assert {r.status_code for r in refused} == {403}
    assert all("mcp-session-id" not in r.headers and r.json()["error"]["data"]["reason"] == "token_revoked"
               for r in refused)
    assert [r.status_code for r in opened] == [200] * 25
    cap = TIERS["personal"].sessions_per_token
    assert alive == [404] * (25 - cap) + [200] * cap  # the oldest idle ones made room
    assert customer.status_code == 200 and customer.headers["mcp-session-id"]


async def test_an_idle_session_ends_after_the_idle_timeout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcp.server.streamable_http_manager")
    async with live_app(tmp_path / "k.db", KAMIYO_SESSION_IDLE_TIMEOUT="1") as live:
        token = await grant(live, "idle@example.com", "team")
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            session = (await initialize(http, token)).headers["mcp-session-id"]
            with anyio.fail_after(10):
                # Waits on the server's own report, without touching (and so refreshing) the session.
                while not any(f"Session {session} idle timeout" in r.getMessage() for r in caplog.records):
                    await anyio.sleep(0.05)
            assert await ping(http, token, session) == 404


def test_session_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path / "k.db", KAMIYO_SESSION_IDLE_TIMEOUT="90", KAMIYO_MAX_SESSIONS="50"))
    assert (settings.session_idle_timeout, settings.max_sessions) == (90, 50)
    for name, value in (("KAMIYO_SESSION_IDLE_TIMEOUT", "0"), ("KAMIYO_MAX_SESSIONS", "lots")):
        with pytest.raises(SettingsError, match=name):
            load_settings(base_env(tmp_path / "k.db", **{name: value}))


# ---- the limiter on its own, in front of a transport that opens and closes sessions ----------------

class Transport:
    """Stands in for the SDK's transport: POST without a session opens one; DELETE closes it."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.release = anyio.Event()
        self.count = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = dict(scope["headers"]).get(b"mcp-session-id")
        headers = []
        if scope["method"] == "DELETE":
            self.open.discard(session.decode())
        elif session is None:
            self.count += 1
            headers = [(b"mcp-session-id", f"s{self.count}".encode())]
            self.open.add(f"s{self.count}")
        else:
            await self.release.wait()  # a call in progress
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


async def test_a_token_whose_sessions_are_all_busy_gets_no_new_one() -> None:
    transport = Transport()
    limits = SessionLimits(transport, idle_timeout=None)
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [(b"host", b"k.test")]}

    async def discard(message: Any) -> None:
        return None

    async def nothing() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    for _ in range(2):
        async with limits.opening("owner", 2, scope, discard) as recording:
            assert recording is not None
            await transport(scope, nothing, recording)

    async def call(session: str) -> None:
        busy = {**scope, "headers": [*scope["headers"], (b"mcp-session-id", session.encode())]}
        async with limits.using(session, "POST", discard) as watching:
            await transport(busy, nothing, watching)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for session in ("s1", "s2"):
                group.start_soon(call, session)
            await anyio.wait_all_tasks_blocked()
            async with limits.opening("owner", 2, scope, discard) as recording:
                assert recording is None and transport.open == {"s1", "s2"}
            transport.release.set()
        async with limits.opening("owner", 2, scope, discard) as recording:
            assert recording is not None and transport.open == {"s2"}  # s1 had been idle longest
