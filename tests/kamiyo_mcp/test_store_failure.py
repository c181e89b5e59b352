"""When the store fails, the server fails closed with a clear answer: no call runs, nothing crashes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from mcp import Client

from kamiyo_mcp.caller import Caller
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from tests.support import ServerProcess, base_env, cli
from tests.support_mcp import text_of


def break_tokens_table(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DROP TABLE tokens")


async def test_the_gate_refuses_a_call_the_store_cannot_decide(settings: Settings) -> None:
    runtime = Runtime(settings)
    async with runtime.opened():
        issued = await runtime.authority.issue_grant("gate@example.com", "team")
        caller = Caller(runtime.authority.verify(issued.token))
        server = build_server(runtime, lambda ctx: caller, missing_token_hint="no token")
        assert settings.database_path is not None
        break_tokens_table(settings.database_path)
        async with Client(server) as client:
            result = await client.call_tool("get_account_status", {})
    assert result.is_error and "account service is unavailable" in text_of(result)


def test_a_broken_store_answers_503_at_the_bearer_check_and_validate(tmp_path: Path,
                                                                     server_factory: type[ServerProcess]) -> None:
    env = base_env(tmp_path / "kamiyo.db")
    token = cli(["token", "issue", "--email", "http@example.com", "--tier", "team"], env).stdout.strip()
    server = server_factory(env).start()
    break_tokens_table(tmp_path / "kamiyo.db")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": {"name": "t", "version": "1"}}}
    mcp = httpx.post(server.url + "/mcp", json=initialize, headers=headers, timeout=30)
    validate = httpx.post(server.url + "/api/mcp/validate", headers=headers, timeout=30)
    assert (mcp.status_code, mcp.headers["retry-after"]) == (503, "5")
    assert mcp.json()["error"] == "temporarily_unavailable"
    assert validate.status_code == 503 and validate.json()["error"]["code"] == "store_unavailable"
    assert token not in server.logs() and "StoreError: SQLite failed" in server.logs()
