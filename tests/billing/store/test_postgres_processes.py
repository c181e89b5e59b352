"""Two `kamiyo-mcp serve` processes on one PostgreSQL database share one truth: quotas and revocations.

The PostgreSQL twin of tests/kamiyo_mcp/test_two_processes.py (which runs them on one SQLite file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import anyio
import httpx

from tests.clock_server import set_clock
from tests.support import DATA, JWT_SECRET, ServerProcess, cli, free_port, webhook_secret
from tests.support_mcp import account_calls, mcp_session, text_of
from tests.support_oauth import authorized_over_http


def environment(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return {"KAMIYO_DATABASE_URL": postgres_url, "MCP_JWT_SECRET": JWT_SECRET, "KAMIYO_INTEL_SOURCES": "",
            "KAMIYO_INTEL_DATABASE": str(tmp_path / "intel.db")}


def started(server_factory: type[ServerProcess], env: dict[str, str], tmp_path: Path,
            clock: Path | None = None) -> ServerProcess:
    server = server_factory(env, clock_file=clock)
    server.log = tmp_path / f"serve.{server.port}.log"  # the default sits beside a SQLite file
    return server.start()


async def test_two_processes_on_postgres_share_the_per_minute_limit_exactly(
    postgres_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    env = environment(postgres_url, tmp_path)
    clock = tmp_path / "clock"
    minute = int(time.time()) // 60 * 60
    set_clock(clock, minute + 59)  # a clock the test sets (tests/clock_server.py): one minute holds every call
    a, b = started(server_factory, env, tmp_path, clock), started(server_factory, env, tmp_path, clock)
    token = cli(["token", "issue", "--email", "shared@example.com", "--tier", "personal"], env).stdout.strip()
    async with mcp_session(a.url, token) as first, mcp_session(b.url, token) as second:
        outcomes = await account_calls((first, 23), (second, 22), refusal="30 calls per minute")
        assert outcomes.count(True) == 30 and outcomes.count(False) == 15
        set_clock(clock, minute + 60)
        again = await account_calls((first, 16), (second, 16), refusal="30 calls per minute")
    assert again.count(True) == 30 and again.count(False) == 2


async def test_a_revocation_through_one_postgres_process_refuses_the_next_call_through_the_other(
    postgres_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    env = environment(postgres_url, tmp_path)
    a, b = started(server_factory, env, tmp_path), started(server_factory, env, tmp_path)
    token = cli(["token", "issue", "--email", "two@example.com", "--tier", "team"], env).stdout.strip()
    async with mcp_session(a.url, token) as via_a, mcp_session(b.url, token) as via_b:
        status = await via_a.call_tool("get_account_status", {})
        assert not status.is_error and status.structured_content
        assert not (await via_b.call_tool("get_account_status", {})).is_error
        token_id = status.structured_content["token"]["token_id"]
        assert cli(["token", "revoke", token_id], env).returncode == 0
        assert (await via_b.call_tool("get_account_status", {})).is_error
        assert (await via_a.call_tool("get_account_status", {})).is_error


async def test_one_event_delivered_to_two_postgres_processes_at_once_is_applied_once(
    postgres_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    secret = webhook_secret("two_processes_0123456789")
    env = {**environment(postgres_url, tmp_path), "STRIPE_WEBHOOK_SECRET": secret,
           "STRIPE_PRICE_MCP_PERSONAL": "price_1PgafmB7WZ01zgkW6dKueIc5"}
    a, b = started(server_factory, env, tmp_path), started(server_factory, env, tmp_path)
    payload = (DATA / "stripe" / "events" / "customer.subscription.created.json").read_bytes()

    def signed() -> dict[str, str]:
        t = int(time.time())
        signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}

    async with httpx.AsyncClient(timeout=30) as http:
        answers = []

        async def deliver(url: str) -> None:
            answers.append(await http.post(url + "/api/v1/webhooks/stripe", content=payload, headers=signed()))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(deliver, a.url)
                group.start_soon(deliver, b.url)

    assert [r.status_code for r in answers] == [200] * 20
    assert sorted(r.json()["status"] for r in answers) == ["duplicate"] * 19 + ["processed"]
    listed = cli(["events", "list", "--json"], env)
    [event] = json.loads(listed.stdout)
    assert event["status"] == "processed" and event["attempts"] == 1


async def test_an_oauth_revocation_on_postgres_ends_access_and_refresh_through_every_process(
    postgres_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    port = free_port()  # one public URL for both, as behind a load balancer: one resource, one issuer
    env = {**environment(postgres_url, tmp_path), "KAMIYO_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    a = server_factory(env, port=port)
    a.log = tmp_path / "serve.a.log"
    a.start()
    b = started(server_factory, env, tmp_path)
    bearer = cli(["token", "issue", "--email", "oauth-pg@example.com", "--tier", "team"], env).stdout.strip()
    client_id, tokens = await authorized_over_http(a.url, bearer)
    access = str(tokens["access_token"])
    async with mcp_session(b.url, access) as via_b:
        status = await via_b.call_tool("get_account_status", {})
        assert not status.is_error and status.structured_content and status.structured_content["tier"] == "team"
        (grant,) = json.loads(cli(["oauth", "grants", "--json"], env).stdout)
        assert cli(["oauth", "revoke", grant["grant_id"]], env).returncode == 0
        refused = await via_b.call_tool("get_account_status", {})
        assert refused.is_error and "revoked" in text_of(refused)
    async with httpx.AsyncClient(timeout=30) as http:
        refreshed = await http.post(b.url + "/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                                            "refresh_token": str(tokens["refresh_token"])})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
