"""`kamiyo-mcp stdio` as Claude Desktop runs it: a subprocess, the token in its environment."""

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from tests.support import REPO, base_env, cli
from tests.support_mcp import text_of


def stdio_server(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "kamiyo_mcp", "stdio"], cwd=str(REPO),
                                 env={"PATH": os.environ.get("PATH", ""), **env})


async def test_the_stdio_server_lists_tools_and_authorizes_each_call(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    token = cli(["token", "issue", "--email", "desk@example.com", "--tier", "team"], env).stdout.strip()
    async with Client(stdio_server({**env, "KAMIYO_TOKEN": token}), mode="legacy") as client:
        assert "get_account_status" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("get_account_status", {})
        assert not result.is_error and result.structured_content
        assert result.structured_content["tier"] == "team"

        token_id = result.structured_content["token"]["token_id"]
        assert cli(["token", "revoke", token_id], env).returncode == 0
        refused = await client.call_tool("get_account_status", {})
        assert refused.is_error and "revoked" in text_of(refused)


async def test_the_stdio_server_refuses_calls_without_or_with_a_bad_token(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")
    async with Client(stdio_server(env), mode="legacy") as client:
        refused = await client.call_tool("get_account_status", {})
        assert refused.is_error and "KAMIYO_TOKEN is not set" in text_of(refused)
    async with Client(stdio_server({**env, "KAMIYO_TOKEN": "forged.token.value"}), mode="legacy") as client:
        refused = await client.call_tool("get_account_status", {})
        assert refused.is_error and "not valid" in text_of(refused) and "forged.token.value" not in text_of(refused)
