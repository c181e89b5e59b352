"""`serve` keeps its incident data fresh: it loads its network source, refreshes it on schedule,
and when the source fails it keeps serving the old data and says so in one log line and /healthz."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.kamiyo_mcp.intel.conftest import LocalServer
from tests.kamiyo_mcp.intel.test_intel_refresh import Source, hacks
from tests.support import ServerProcess, base_env, cli
from tests.support_mcp import mcp_session


@pytest.fixture
def local_server() -> Iterator[Callable[[Any], LocalServer]]:
    servers: list[LocalServer] = []

    def start(route: Any) -> LocalServer:
        servers.append(LocalServer(route).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


async def _until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 30) -> Any:
    """Poll `check` until it returns something truthy, for at most `seconds`."""
    try:
        with anyio.fail_after(seconds):
            while not (found := await check()):
                await anyio.sleep(0.1)  # polling another process, bounded by fail_after
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None
    return found


async def test_serve_loads_refreshes_and_survives_a_failing_source(
    tmp_path: Path, server_factory: type[ServerProcess], local_server: Callable[[Any], LocalServer]
) -> None:
    source = Source(local_server)
    env = base_env(tmp_path / "kamiyo.db", KAMIYO_INTEL_SOURCES=source.url, KAMIYO_INTEL_REFRESH_INTERVAL="1s")
    process: ServerProcess = server_factory(env).start()
    token = cli(["token", "issue", "--email", "r@example.com", "--tier", "team"], env).stdout.strip()

    async with httpx.AsyncClient(base_url=process.url) as http:
        async def intel() -> dict[str, Any]:
            return dict((await http.get("/healthz")).json()["intel"])

        async def names() -> set[str]:
            async with mcp_session(process.url, token) as client:
                result = await client.call_tool("search_crypto_exploits", {"query": "", "since": "2026-08-01"})
            return {e["protocol"] for e in (result.structured_content or {}).get("exploits", [])}

        loaded = await _until(lambda: _status(intel, "ok"), "the first load")
        assert loaded["interval_seconds"] == 1 and loaded["data_as_of"]
        assert await names() == {"Alpha Protocol"}
        assert any(h.get("if-none-match") == '"v1"' for h in await _until(lambda: _conditional(source), "a 304"))

        source.body, source.etag = hacks("Alpha Protocol", "Beta Finance"), '"v2"'
        assert await _until(lambda: _contains(names, "Beta Finance"), "the refreshed incident")

        source.failing = True
        failed = await _until(lambda: _status(intel, "failed"), "the failure in /healthz")
        assert "HTTP 503" in failed["sources"][0]["error"] and "api_key" not in str(failed)
        assert await names() == {"Alpha Protocol", "Beta Finance"}
    log = process.log.read_text()
    lines = [line for line in log.splitlines() if "Intel refresh failed" in line]
    assert lines and all("keeping the data as of 20" in line and "HTTP 503" in line for line in lines)
    assert "api_key" not in log and "not-for-logs" not in log


async def _status(intel: Callable[[], Awaitable[dict[str, Any]]], wanted: str) -> dict[str, Any] | None:
    shown = await intel()
    return shown if shown.get("refresh") == wanted else None


async def _conditional(source: Source) -> list[dict[str, str]] | None:
    return source.server.headers_seen if any("if-none-match" in h for h in source.server.headers_seen) else None


async def _contains(names: Callable[[], Awaitable[set[str]]], name: str) -> bool:
    return name in await names()


def test_the_refresh_interval_setting_is_checked_at_start(tmp_path: Path) -> None:
    env = base_env(tmp_path / "kamiyo.db", KAMIYO_INTEL_REFRESH_INTERVAL="every six hours")
    done = cli(["serve", "--port", "1"], env)
    assert done.returncode == 2 and "KAMIYO_INTEL_REFRESH_INTERVAL" in done.stderr
