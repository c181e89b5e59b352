"""`serve` on PostgreSQL on a fresh host: the local intel file's data directory does not exist yet."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support import JWT_SECRET, ServerProcess, cli
from tests.support_mcp import mcp_session, text_of


async def test_serve_on_postgres_creates_a_private_data_directory_on_a_fresh_host(
    postgres_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    home = tmp_path / "home" / "ann"  # a new user: no home directory yet, no XDG_DATA_HOME
    env = {"KAMIYO_DATABASE_URL": postgres_url, "MCP_JWT_SECRET": JWT_SECRET, "KAMIYO_INTEL_SOURCES": "",
           "HOME": str(home)}
    server = server_factory(env)
    server.log = tmp_path / "serve.log"
    server.start()

    data_dir = home / ".local" / "share" / "kamiyo-mcp"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert (data_dir / "intel.db").is_file()
    token = cli(["token", "issue", "--email", "fresh@example.com", "--tier", "personal"], env).stdout.strip()
    async with mcp_session(server.url, token) as session:
        status = await session.call_tool("get_account_status", {})
        search = await session.call_tool("search_crypto_exploits", {"query": "curve"})
    assert not status.is_error, text_of(status)
    assert "No exploit data is loaded yet" in text_of(search)  # the intel file answered: empty, not broken
