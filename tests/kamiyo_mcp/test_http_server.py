"""The real server process over streamable HTTP, driven by the official MCP client."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from billing.authority import Authority
from billing.store import SQLiteStore
from billing.tokens import TokenCodec
from tests.support import JWT_SECRET, ServerProcess, base_env, cli
from tests.support_mcp import mcp_session, text_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = base_env(tmp_path_factory.mktemp("http") / "kamiyo.db")
    process = ServerProcess(env).start()
    yield process
    process.stop()
    assert "Traceback" not in process.logs()


def issue(server: ServerProcess, tier: str, email: str = "user@example.com", *extra: str) -> str:
    result = cli(["token", "issue", "--email", email, "--tier", tier, *extra], server.env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def token_id(server: ServerProcess, email: str) -> str:
    [record] = [r for r in json.loads(cli(["token", "list", "--json", "--email", email], server.env).stdout)
                if r["status"] == "active"]
    return str(record["token_id"])


async def test_the_official_client_lists_tools_and_reads_the_account(server: ServerProcess) -> None:
    token = issue(server, "team", "reader@example.com")
    async with mcp_session(server.url, token) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "get_account_status" in tools and tools["get_account_status"].description
        result = await client.call_tool("get_account_status", {})
        assert not result.is_error
        status = result.structured_content
        assert status is not None
        assert status["tier"] == "team" and status["email"] == "reader@example.com"
        assert status["usage"]["calls_this_minute"] >= 1 and status["limits"]["calls_per_minute"] == 120


async def test_account_status_shows_only_the_ways_out_that_exist(server: ServerProcess) -> None:
    token = issue(server, "enterprise", "top@example.com")
    async with mcp_session(server.url, token) as client:
        status = (await client.call_tool("get_account_status", {})).structured_content
    assert status is not None
    # The top tier has nothing to upgrade to; an operator grant has no Stripe billing (the portal answers 409).
    assert "upgrade_url" not in status and "manage_billing" not in status  # empty fields are left out
    assert "@" in status["support"]


async def test_a_revocation_by_another_process_refuses_the_next_call_of_an_open_session(server: ServerProcess) -> None:
    token = issue(server, "personal", "revoked@example.com")
    async with mcp_session(server.url, token) as client:
        assert not (await client.call_tool("get_account_status", {})).is_error
        assert cli(["token", "revoke", token_id(server, "revoked@example.com"), "--reason", "abuse"],
                   server.env).returncode == 0
        refused = await client.call_tool("get_account_status", {})
        assert refused.is_error and "revoked (abuse)" in text_of(refused)
        assert (await client.list_tools()).tools  # tools/list still answers
    async with httpx.AsyncClient(base_url=server.url) as http:
        validated = await http.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
    assert validated.status_code == 200
    assert validated.json()["revoked"] is True and validated.json()["active"] is False
    assert validated.json()["revoked_reason"] == "abuse"


async def test_a_tier_change_is_reported_by_the_next_call_of_an_open_session(server: ServerProcess) -> None:
    token = issue(server, "personal", "upgrade@example.com")
    async with mcp_session(server.url, token) as client:
        first = await client.call_tool("get_account_status", {})
        assert first.structured_content and first.structured_content["tier"] == "personal"
        assert cli(["token", "tier", token_id(server, "upgrade@example.com"), "enterprise"], server.env).returncode == 0
        second = await client.call_tool("get_account_status", {})
        assert second.structured_content and second.structured_content["tier"] == "enterprise"
        assert second.structured_content["limits"]["calls_per_minute"] == 600


async def expired_and_rotated_tokens(server: ServerProcess) -> tuple[str, str]:
    store = await SQLiteStore.open(server.env["KAMIYO_DATABASE_URL"])
    try:
        past = Authority(store, TokenCodec(JWT_SECRET), public_url=server.url, clock=lambda: time.time() - 3 * 86400)
        expired = (await past.issue_grant("expired@example.com", "team", days=1)).token
        now = Authority(store, TokenCodec(JWT_SECRET), public_url=server.url)
        old = await now.issue_grant("rotated@example.com", "team")
        await now.rotate(old.token_id)
        return expired, old.token
    finally:
        await store.close()


async def test_every_kind_of_bad_token_gets_401_with_a_challenge_and_no_echo(server: ServerProcess) -> None:
    expired, rotated = await expired_and_rotated_tokens(server)
    forged, _ = TokenCodec("a-different-secret-that-is-long-enough").mint(
        sub="usr_x", tier="enterprise", sid=None, now=int(time.time()), expires_at=int(time.time()) + 60)
    unknown, _ = TokenCodec(JWT_SECRET).mint(sub="usr_x", tier="enterprise", sid=None, now=int(time.time()),
                                             expires_at=int(time.time()) + 60)
    cases = {
        "missing": ({}, "bearer token is required"),
        "basic": ({"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer <token>'"),
        "garbage": ({"Authorization": "Bearer not.a.jwt"}, "malformed"),
        "forged": ({"Authorization": f"Bearer {forged}"}, "signature"),
        "expired": ({"Authorization": f"Bearer {expired}"}, "expired"),
        "unknown": ({"Authorization": f"Bearer {unknown}"}, "not recognised"),
        "rotated": ({"Authorization": f"Bearer {rotated}"}, "replaced"),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(base_url=server.url) as http:
        for name, (headers, words) in cases.items():
            accept = {"Accept": "application/json, text/event-stream"}
            response = await http.post("/mcp", json=body, headers={**headers, **accept})
            assert response.status_code == 401, name
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith("Bearer ") and \
                f'resource_metadata="{server.url}/.well-known/oauth-protected-resource/mcp"' in challenge, name
            assert words in response.json()["error_description"], name
            token = headers.get("Authorization", " ").split(" ", 1)[1]
            assert not token or (token not in response.text and token not in challenge), name


async def test_protected_resource_metadata_names_the_mcp_endpoint(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert metadata["resource"] == server.url + "/mcp"
    assert metadata["bearer_methods_supported"] == ["header"]


async def test_the_metadata_advertises_only_authorization_servers_that_are_served(server: ServerProcess) -> None:
    # An advertised issuer without metadata sends OAuth clients (mcp-remote, Inspector) into a failing
    # client registration instead of showing why the token was refused.
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(server.url + "/.well-known/oauth-protected-resource/mcp")).json()
        for issuer in metadata.get("authorization_servers", []):
            discovery = await http.get(issuer.rstrip("/") + "/.well-known/oauth-authorization-server")
            assert discovery.status_code == 200, issuer


async def test_validate_answers_the_token_details_or_401(server: ServerProcess) -> None:
    token = issue(server, "enterprise", "validate@example.com")
    async with httpx.AsyncClient(base_url=server.url) as http:
        ok = await http.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
        bad = await http.post("/api/mcp/validate", headers={"Authorization": "Bearer nope"})
    assert ok.status_code == 200
    assert ok.json()["valid"] is True and ok.json()["tier"] == "enterprise" and ok.json()["expires_at"]
    assert bad.status_code == 401 and bad.json()["valid"] is False and bad.json()["error"]["code"] == "invalid_token"


async def test_a_foreign_host_header_is_refused(server: ServerProcess) -> None:
    token = issue(server, "team", "rebind@example.com")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}", "Host": "evil.example.com",
                     "Accept": "application/json, text/event-stream"},
        )
    assert 400 <= response.status_code < 500 and response.status_code != 401


def test_health_reports_the_database(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_the_server_log_never_contains_a_token(server: ServerProcess, tmp_path: Path) -> None:
    token = issue(server, "team", "log@example.com")
    httpx.post(server.url + "/mcp", headers={"Authorization": f"Bearer {token}x"}, json={})
    assert token not in server.logs()


def test_without_stripe_the_billing_endpoints_say_billing_is_not_configured(server: ServerProcess) -> None:
    health = httpx.get(server.url + "/api/billing/checkout-health")
    checkout = httpx.post(server.url + "/api/billing/create-checkout-session",
                          json={"tier": "team", "user_email": "a@example.com",
                                "success_url": server.url + "/billing/success", "cancel_url": server.url + "/pricing"})
    assert health.status_code == 503 and health.json()["error"]["code"] == "billing_not_configured"
    assert checkout.status_code == 503 and "not configured" in checkout.json()["error"]["message"]
    assert httpx.get(server.url + "/openapi.json").json()["paths"]["/api/billing/create-checkout-session"]


async def test_an_unknown_prompt_is_the_callers_mistake_on_every_protocol_version(server: ServerProcess) -> None:
    token = issue(server, "personal", "prompts@example.com")
    modern = httpx.post(server.url + "/mcp", timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "prompts/get", "Mcp-Name": "nope"},
        json={"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "nope", "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}})
    assert modern.json()["error"] == {"code": -32602, "message": "Unknown prompt: nope", "data": {"name": "nope"}}
    async with mcp_session(server.url, token) as client:
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("nope")
    assert raised.value.error.code == -32602
