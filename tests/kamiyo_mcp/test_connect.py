"""`kamiyo-mcp connect URL` as Claude Desktop runs it: a subprocess bridging stdio to a real server.

The official MCP client speaks stdio to the bridge; the bridge talks streamable HTTP to a real
`kamiyo-mcp serve`, with KAMIYO_TOKEN or, without it, after an OAuth sign-in in the "browser"
(a headless person following the address the bridge prints, back to its loopback page).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from kamiyo_mcp.connect import ConnectError, mcp_url
from tests.support import REPO, ServerProcess, base_env, cli
from tests.support_mcp import text_of
from tests.support_oauth import HeadlessPerson

SIGN_IN_PREFIX = "http://127.0.0.1:"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(base_env(tmp_path / "kamiyo.db")).start()
    yield process
    process.stop()
    assert "Traceback" not in process.logs()


def bridge(server: ServerProcess, tmp_path: Path, *extra_args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "kamiyo_mcp", "connect", server.url + "/mcp", *extra_args],
        cwd=str(REPO), env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                            "XDG_CONFIG_HOME": str(tmp_path / "config"), "KAMIYO_LOG_LEVEL": "WARNING", **env})


async def account_through(params: StdioServerParameters, log: Path) -> dict[str, Any]:
    with open(log, "a") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            assert "get_account_status" in {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("get_account_status", {})
            assert not result.is_error and result.structured_content is not None, text_of(result)
            return dict(result.structured_content)


async def printed_sign_in_address(log: Path) -> str:
    with anyio.fail_after(30):
        while True:
            for line in log.read_text().splitlines() if log.exists() else []:
                if line.startswith(SIGN_IN_PREFIX) and "/authorize?" in line:
                    return line.strip()
            await anyio.sleep(0.05)  # polling another process's log, bounded by fail_after


async def test_with_kamiyo_token_the_bridge_relays_calls_to_the_server(server: ServerProcess, tmp_path: Path
                                                                       ) -> None:
    token = cli(["token", "issue", "--email", "bridge@example.com", "--tier", "personal"], server.env).stdout.strip()
    status = await account_through(bridge(server, tmp_path, KAMIYO_TOKEN=token), tmp_path / "connect.log")
    assert status["tier"] == "personal" and status["email"] == "bridge@example.com"
    assert not (tmp_path / "config").exists()  # a static token caches nothing


async def test_without_a_token_it_signs_in_once_in_the_browser_and_then_reuses_the_cache(server: ServerProcess,
                                                                                         tmp_path: Path) -> None:
    token = cli(["token", "issue", "--email", "desk@example.com", "--tier", "team"], server.env).stdout.strip()
    params, log = bridge(server, tmp_path, "--no-browser"), tmp_path / "connect.log"
    found: dict[str, Any] = {}

    async def the_app() -> None:
        found.update(await account_through(params, log))

    async with anyio.create_task_group() as group:
        group.start_soon(the_app)
        person = HeadlessPerson(None, token=token)  # signs in with the KAMIYO token they hold
        await person.redirect(await printed_sign_in_address(log))
        assert person.returned_to is not None and person.returned_to.startswith(SIGN_IN_PREFIX)
        async with httpx.AsyncClient(timeout=30) as browser:
            landed = await browser.get(person.returned_to)  # the browser comes back to the bridge
        assert landed.status_code == 200 and "KAMIYO is connected" in landed.text
    assert found["tier"] == "team" and found["email"] == "desk@example.com"

    (cache,) = (tmp_path / "config" / "kamiyo-mcp" / "connect").iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600 and stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert "refresh_token" in cache.read_text()

    log.write_text("")
    again = await account_through(params, log)  # a second start: no sign-in, the cached tokens
    assert again["tier"] == "team" and "/authorize?" not in log.read_text()

    signed_out = cli(["connect", server.url + "/mcp", "--sign-out"],
                     {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)})
    assert signed_out.returncode == 0 and "the server revoked the sign-in" in signed_out.stderr
    assert not cache.exists()
    grants = cli(["oauth", "grants", "--json"], server.env).stdout
    assert '"status": "revoked"' in grants


def test_a_url_that_is_not_a_server_is_refused_with_one_line() -> None:
    assert mcp_url("https://mcp.kamiyo.ai") == "https://mcp.kamiyo.ai/mcp"
    assert mcp_url("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/mcp"
    for bad in ("mcp.kamiyo.ai", "ftp://x/mcp", "http://mcp.kamiyo.ai/mcp"):
        with pytest.raises(ConnectError):
            mcp_url(bad)
    result = cli(["connect", "http://mcp.kamiyo.ai/mcp"], {})
    assert result.returncode == 2
    assert result.stderr.strip().endswith("use https: tokens must not cross the network in the clear")
