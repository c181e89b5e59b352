"""The largest answer each tool can give, at each tier, stays under the 100 KB budget (text and
structured content together, as the client receives them).

The largest inputs are found by asking every candidate in-process against the server's own data
file (every incident's details, every address's screening, every protocol name and name prefix),
then asked again through the official client at each tier.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kamiyo_mcp.intel.budget import BUDGET_BYTES
from kamiyo_mcp.intel.names import name_key
from kamiyo_mcp.intel.queries import assess_protocol_risk, exploit_details, screen_wallet
from kamiyo_mcp.intel.render import render_details, render_risk, render_wallet
from kamiyo_mcp.intel.search_spec import SearchSpec
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.settings import load_settings
from tests.support import ServerProcess
from tests.support_mcp import mcp_session

TIERS = ("personal", "team", "enterprise")


def _size(answer: Any, text: str) -> int:
    return len(json.dumps(answer.wire())) + len(json.dumps(text))


async def _largest_inputs(db: Path) -> dict[str, dict[str, Any]]:
    store = await IntelStore.open(db)
    try:
        _, ids = await store.search_ids(SearchSpec(), limit=100_000)
        details = {i: _size(a, render_details(a)) for i in ids for a in [await exploit_details(store, i)]}
        addresses = [r[0] for r in await store._rows("SELECT DISTINCT address FROM intel_addresses")]
        wallets = {}
        for address in addresses:
            if address.startswith("0x") and len(address) == 42:
                answer = await screen_wallet(store, None, address=address, chain="ethereum", lookback_days=90)
                wallets[address] = _size(answer, render_wallet(answer))
        names = {n for g in await store.group_summaries() for n in g.member_names}
        candidates = names | {name_key(n)[:4] for n in names if len(name_key(n)) >= 4}
        risks = {}
        for name in candidates:
            answer = await assess_protocol_risk(store, protocol=name, chain=None, time_window_days=3650, detail="full")
            risks[name] = _size(answer, render_risk(answer))
    finally:
        await store.close()
    return {
        "get_exploit_details": {"exploit_id": max(details, key=details.__getitem__)},
        "monitor_wallet": {"address": max(wallets, key=wallets.__getitem__)},
        "assess_defi_protocol_risk": {"protocol": max(risks, key=risks.__getitem__), "time_window_days": 3650},
        "search_crypto_exploits": {"query": "", "limit": 100_000},
        "get_account_status": {},
    }


@pytest.fixture(scope="module")
def largest(intel_server: ServerProcess) -> dict[str, dict[str, Any]]:
    return asyncio.run(_largest_inputs(load_settings(intel_server.env).intel_path))


@pytest.mark.parametrize("tier", TIERS)
async def test_the_largest_answer_of_every_tool_stays_under_the_budget(
    intel_server: ServerProcess, tier_tokens: dict[str, str], largest: dict[str, dict[str, Any]], tier: str
) -> None:
    async with mcp_session(intel_server.url, tier_tokens[tier]) as client:
        for tool, arguments in largest.items():
            for sort in ("newest", "largest") if tool == "search_crypto_exploits" else (None,):
                result = await client.call_tool(tool, {**arguments, **({"sort": sort} if sort else {})})
                wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                size = len(json.dumps(wire, ensure_ascii=False).encode())
                assert size <= BUDGET_BYTES, f"{tool} at {tier}: {size} bytes"
                if tool == "search_crypto_exploits":
                    page = result.structured_content or {}
                    # Everything this plan may page through fits, or the rest follows with a cursor.
                    assert page["returned"] == page["pageable"] or page.get("next_cursor")
                elif not (tool == "monitor_wallet" and tier == "personal"):
                    assert not result.is_error, (tool, tier)


def test_the_largest_inputs_are_real_ones(largest: dict[str, dict[str, Any]]) -> None:
    # BtcTurk 2025-08-14 lists 159 attack transactions (DeFiLlama + BlockSec + DeFiHackLabs).
    assert largest["get_exploit_details"]["exploit_id"] == "defillama:2025-08-14:btcturk"
    assert largest["monitor_wallet"]["address"] == "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"
