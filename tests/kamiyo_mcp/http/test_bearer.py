"""The bearer layer: one authentication and one store trip per request; the token goes no further."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from billing.authority import Authority
from billing.store import SQLiteStore
from billing.tokens import TokenCodec, token_hash
from kamiyo_mcp.caller import Caller, caller_in
from kamiyo_mcp.catalog import ToolCatalog
from kamiyo_mcp.http.bearer import BearerAuth
from kamiyo_mcp.http.protected_resource import ProtectedResource
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from tests.kamiyo_mcp.gate_support import Clock, stripe_subscription
from tests.kamiyo_mcp.live import live_app
from tests.support import JWT_SECRET
from tests.support_mcp import mcp_session, text_of

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
RESOURCE = ProtectedResource("http://kamiyo.test/mcp", "http://kamiyo.test/.well-known/oauth-protected-resource/mcp",
                             "http://kamiyo.test/pricing")


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


class Recorder:
    """The app behind the bearer layer: records what it was handed, optionally takes the decided call."""

    def __init__(self, *, take: bool) -> None:
        self.take = take
        self.scopes: list[Scope] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        caller = caller_in(scope)
        if self.take and caller is not None and caller.pending is not None:
            caller.pending.take(caller.pending.tool)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
async def authority(tmp_path: Path) -> AsyncIterator[Authority]:
    store = await SQLiteStore.open(tmp_path / "k.db")
    yield Authority(store, TokenCodec(JWT_SECRET), public_url="http://kamiyo.test", clock=Clock())
    await store.close()


async def catalog(settings: Settings) -> ToolCatalog:
    return build_server(Runtime(settings), lambda ctx: None, missing_token_hint="-").catalog


def client_for(app: BearerAuth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kamiyo.test")


async def test_the_token_goes_no_further_than_the_bearer_layer(authority: Authority, settings: Settings) -> None:
    token = (await authority.issue_grant("edge@example.com", "team")).token
    recorder = Recorder(take=True)
    body = json.dumps(rpc("tools/call", {"name": "get_account_status", "arguments": {}})).encode()
    async with client_for(BearerAuth(recorder, lambda: authority, await catalog(settings), path="/mcp",
                                     resource=RESOURCE)) as http:
        response = await http.post("/mcp", content=body, headers={**ACCEPT, "Authorization": f"Bearer {token}",
                                                                   "Mcp-Session-Id": "s1"})
    assert response.status_code == 200
    [scope] = recorder.scopes
    assert all(name != b"authorization" for name, _ in scope["headers"])
    assert token not in repr(scope) and token.split(".")[2] not in repr(scope)
    assert recorder.bodies == [body]  # the transport reads the body as sent
    caller = caller_in(scope)
    assert isinstance(caller, Caller) and caller.credential.token_hash == token_hash(token)


async def test_a_decided_call_that_never_reaches_its_tool_is_given_back(authority: Authority,
                                                                      settings: Settings) -> None:
    issued = await authority.issue_grant("back@example.com", "personal")
    call = json.dumps(rpc("tools/call", {"name": "get_account_status", "arguments": {}})).encode()
    headers = {**ACCEPT, "Authorization": f"Bearer {issued.token}", "Mcp-Session-Id": "s1"}
    for take, counted in ((False, 0), (True, 1)):
        app = BearerAuth(Recorder(take=take), lambda: authority, await catalog(settings), path="/mcp",
                         resource=RESOURCE)
        async with client_for(app) as http:
            assert (await http.post("/mcp", content=call, headers=headers)).status_code == 200
        state = await authority.store.token_state(token_hash(issued.token))
        assert state is not None and (state.minute_count, state.day_count) == (counted, counted), take


async def test_a_request_that_calls_no_tool_counts_nothing(authority: Authority, settings: Settings) -> None:
    issued = await authority.issue_grant("list@example.com", "personal")
    recorder = Recorder(take=True)
    headers = {**ACCEPT, "Authorization": f"Bearer {issued.token}", "Mcp-Session-Id": "s1"}
    async with client_for(BearerAuth(recorder, lambda: authority, await catalog(settings), path="/mcp",
                                     resource=RESOURCE)) as http:
        for body in (rpc("tools/list"), rpc("tools/call", {"name": "search_crypto_exploits",
                                                           "arguments": {"limit": "many"}}),
                     rpc("tools/call", {"name": "no_such_tool"}), [rpc("tools/list")], {"jsonrpc": "2.0"}):
            assert (await http.post("/mcp", json=body, headers=headers)).status_code == 200
    state = await authority.store.token_state(token_hash(issued.token))
    assert state is not None and state.minute_count == 0
    assert all((caller := caller_in(scope)) is not None and caller.pending is None for scope in recorder.scopes)


async def test_each_tool_call_makes_one_store_trip_and_no_other_read(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with live_app(tmp_path / "k.db") as live:
        token = (await live.runtime.authority.issue_grant("trip@example.com", "team")).token
        store, trips = live.runtime.store, {"admit_call": 0, "token_state": 0}
        for name in trips:
            original = getattr(store, name)

            async def counted(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                trips[_name] += 1
                return await _original(*args, **kwargs)

            monkeypatch.setattr(store, name, counted)
        async with mcp_session(live.url, token) as client:
            await client.list_tools()
            before = dict(trips)
            for _ in range(5):
                result = await client.call_tool("get_account_status", {})
                assert not result.is_error
            after = dict(trips)
    assert after["admit_call"] - before["admit_call"] == 5 and after["token_state"] == before["token_state"]


async def test_a_session_is_not_opened_for_a_token_whose_account_allows_no_calls(tmp_path: Path) -> None:
    async with live_app(tmp_path / "k.db") as live:
        issued = await live.runtime.authority.issue_grant("dead@example.com", "team")
        await live.runtime.authority.revoke(issued.token_id, reason="chargeback")
        initialize = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "t", "version": "1"}}, request_id=7)
        async with httpx.AsyncClient(base_url=live.url) as http:
            refused = await http.post("/mcp", json=initialize,
                                      headers={**ACCEPT, "Authorization": f"Bearer {issued.token}"})
    assert refused.status_code == 403 and "mcp-session-id" not in refused.headers
    body = refused.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 7 and body["error"]["data"]["reason"] == "token_revoked"
    assert "revoked (chargeback)" in body["error"]["message"] and issued.token not in refused.text


@pytest.mark.parametrize("status, ended_period", [("canceled", False), ("active", True)])
async def test_a_session_is_not_opened_for_a_token_whose_subscription_ended(tmp_path: Path, status: str,
                                                                           ended_period: bool) -> None:
    async with live_app(tmp_path / "k.db") as live:
        now = live.runtime.authority.now()
        token = await stripe_subscription(live.runtime, "team", status, period_end=now - 1 if ended_period else None,
                                          cancel_at_period_end=ended_period)
        initialize = rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "t", "version": "1"}}, request_id=3)
        async with httpx.AsyncClient(base_url=live.url) as http:
            refused = [await http.post("/mcp", json=initialize, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
                       for _ in range(3)]
    assert [r.status_code for r in refused] == [403] * 3
    assert all("mcp-session-id" not in r.headers for r in refused)
    assert {r.json()["error"]["data"]["reason"] for r in refused} == {"subscription_ended"}


async def test_a_call_with_arguments_the_tool_refuses_spends_no_quota_over_http(tmp_path: Path) -> None:
    async with live_app(tmp_path / "k.db") as live:
        token = (await live.runtime.authority.issue_grant("args@example.com", "personal")).token
        async with mcp_session(live.url, token) as client:
            bad = await client.call_tool("search_crypto_exploits", {"limit": "many"})
            assert bad.is_error and "validation error" in text_of(bad)
            status = await client.call_tool("get_account_status", {})
    assert status.structured_content is not None
    assert status.structured_content["usage"]["calls_this_minute"] == 1


async def test_a_tool_call_the_transport_refuses_is_not_counted(tmp_path: Path) -> None:
    async with live_app(tmp_path / "k.db") as live:
        token = (await live.runtime.authority.issue_grant("host@example.com", "personal")).token
        headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=live.url) as http:
            opened = await http.post("/mcp", headers=headers, json=rpc("initialize", {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
            headers |= {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
            call = rpc("tools/call", {"name": "get_account_status", "arguments": {}}, request_id=2)
            # DNS-rebinding protection refuses a foreign Host after the bearer layer decided the call.
            refused = await http.post("/mcp", json=call, headers={**headers, "Host": "evil.example.com"})
            assert 400 <= refused.status_code < 500
            answered = await http.post("/mcp", json=call, headers=headers)
    status = sse_result(answered)["structuredContent"]
    assert status["usage"]["calls_this_minute"] == 1


def sse_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC result carried by a one-message SSE response."""
    [data] = [line[len("data:"):] for line in response.text.splitlines() if line.startswith("data:")]
    result: dict[str, Any] = json.loads(data)["result"]
    return result
