"""When the incident store fails, tools, the incident resource and prompts answer a clear error (official client).

SQLite's own message goes to the server's log, never to the caller.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from kamiyo_mcp.caller import Caller
from kamiyo_mcp.intel.records import AddressLink, Incident
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from kamiyo_mcp.tools.intel import STORE_UNAVAILABLE
from tests.support_mcp import text_of

EULER = Incident(id="defillama:2023-03-13:euler", source="defillama", date="2023-03-13", protocol="Euler",
                 chains=("Ethereum",), amount_usd=197_000_000)
ATTACKER = "0xb66cd966670d962c227b3eaba30a872dbfb995db"


def drop_table(db: Path, table: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(f"DROP TABLE {table}")


@asynccontextmanager
async def loaded(settings: Settings) -> AsyncIterator[tuple[Client, Path]]:
    """A client of an in-process server (enterprise grant) over a store holding one incident."""
    runtime = Runtime(settings)
    async with runtime.opened():
        await runtime.intel.apply_incidents([EULER])
        await runtime.intel.apply_addresses([AddressLink(ATTACKER, "ethereum", "attacker", EULER.id, "defillama")])
        await runtime.intel.relink()
        issued = await runtime.authority.issue_grant("intel@example.com", "enterprise")
        caller = Caller(runtime.authority.verify(issued.token))
        server = build_server(runtime, lambda ctx: caller, missing_token_hint="no token")
        async with Client(server) as client:
            yield client, settings.intel_path


async def test_a_search_on_a_damaged_store_is_a_tool_error_that_names_no_sqlite_detail(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with loaded(settings) as (client, db):
        assert not (await client.call_tool("search_crypto_exploits", {"query": "Euler"})).is_error
        drop_table(db, "intel_search")
        with caplog.at_level(logging.ERROR, logger="kamiyo_mcp.tools.intel"):
            result = await client.call_tool("search_crypto_exploits", {"query": "Euler"})
    assert result.is_error and text_of(result).endswith(f": {STORE_UNAVAILABLE}")
    assert "sqlite" not in text_of(result).lower()
    assert "no such table: intel_search" in caplog.text


async def test_details_the_incident_resource_and_the_wallet_prompt_answer_the_same_clear_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with loaded(settings) as (client, db):
        drop_table(db, "intel_addresses")
        with caplog.at_level(logging.ERROR):
            details = await client.call_tool("get_exploit_details", {"exploit_id": EULER.id})
            with pytest.raises(MCPError) as resource:
                await client.read_resource(f"kamiyo://incidents/{EULER.id}")
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt("screen_wallet_before_interacting", {"address": ATTACKER})
    assert details.is_error and text_of(details).endswith(f": {STORE_UNAVAILABLE}")
    assert resource.value.error.message == STORE_UNAVAILABLE
    assert (prompt.value.error.code, prompt.value.error.message) == (INTERNAL_ERROR, STORE_UNAVAILABLE)
    assert caplog.text.count("no such table: intel_addresses") >= 3
