"""The exploit-intelligence tools through the real server, the gate and the official MCP client."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ServerProcess, base_env, cli
from tests.support_mcp import mcp_session, text_of

CURVE = {"protocol": "Curve"}
COFFEE = "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"
TOOLS = ("search_crypto_exploits", "assess_defi_protocol_risk", "monitor_wallet", "get_exploit_details")


async def test_every_intel_tool_publishes_a_typed_output_schema_with_described_fields(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in TOOLS:
        schema = tools[name].output_schema
        assert schema and "data_as_of" in schema["properties"], name
        # The answer and every nested model (rows, addresses, factors ...) are closed, typed and described.
        models = {name: schema, **{f"{name}/{d}": spec for d, spec in schema.get("$defs", {}).items()}}
        assert len(models) > 1, name
        for model, spec in models.items():
            assert spec.get("additionalProperties") is False and spec["properties"], model
            for field, prop in spec["properties"].items():
                assert prop.get("description"), f"{model}.{field} has no description"
                assert "type" in prop or "anyOf" in prop or "$ref" in prop, f"{model}.{field} has no type"


async def test_ronin_is_found_with_its_real_amount_and_date(intel_server: ServerProcess,
                                                            tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "Ronin", "since": "2022-01-01"})
    assert not result.is_error and result.structured_content
    ronin = [e for e in result.structured_content["exploits"] if e["id"] == "defillama:2022-03-23:ronin-bridge"]
    assert ronin and ronin[0]["amount_usd"] == 624_000_000 and ronin[0]["date"] == "2022-03-23"
    assert result.structured_content["data_as_of"]


async def test_the_text_is_a_compact_table_not_a_second_json_copy(intel_server: ServerProcess,
                                                                  tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "bridge", "sort": "largest", "limit": 5})
    text = text_of(result)
    assert not text.lstrip().startswith("{") and '"exploits"' not in text
    assert "date | protocol | chains | loss | technique | id" in text
    assert "Ronin Bridge" in text and "$624M" in text and "Losses on this page" in text
    assert len(text) < 2_000


async def test_a_tier_cap_limits_how_far_a_search_pages_not_the_size_of_an_answer(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    for tier, cap in (("personal", 50), ("enterprise", 1000)):
        async with mcp_session(intel_server.url, tier_tokens[tier]) as client:
            seen: list[str] = []
            arguments: dict[str, object] = {"query": "", "limit": 5000}
            while True:
                result = await client.call_tool("search_crypto_exploits", arguments)
                assert result.structured_content, text_of(result)
                seen += [e["id"] for e in result.structured_content["exploits"]]
                cursor = result.structured_content.get("next_cursor")
                if not cursor:
                    break
                arguments = {"cursor": cursor, "limit": 5000}
        assert len(seen) == len(set(seen)) == cap == result.structured_content["pageable"]


async def test_risk_detail_follows_the_tier(intel_server: ServerProcess, tier_tokens: dict[str, str]) -> None:
    shapes = {}
    for tier in ("personal", "team", "enterprise"):
        async with mcp_session(intel_server.url, tier_tokens[tier]) as client:
            result = await client.call_tool("assess_defi_protocol_risk", CURVE)
        assert result.structured_content, text_of(result)
        shapes[tier] = set(result.structured_content)
        assert 0 <= result.structured_content["risk_score"] <= 100
        assert f"risk {result.structured_content['risk_score']}/100" in text_of(result)
    assert "exploit_count" not in shapes["personal"] and "risk_factors" not in shapes["personal"]
    assert "exploit_count" in shapes["team"] and "risk_factors" not in shapes["team"]
    assert {"risk_factors", "recommendations", "peer_comparison"} <= shapes["enterprise"]


async def test_wallet_screening_is_refused_below_team_and_labels_the_whitehat_above(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["personal"]) as client:
        refused = await client.call_tool("monitor_wallet", {"address": COFFEE})
    assert refused.is_error and "team tier" in text_of(refused) and "/pricing" in text_of(refused)
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        screened = await client.call_tool("monitor_wallet", {"address": COFFEE})
    assert screened.structured_content, text_of(screened)
    assert screened.structured_content["linked"] is True
    assert screened.structured_content["known_entity"]["kind"] == "whitehat_mev"
    assert all(link["role"] == "attacker" for link in screened.structured_content["incident_links"])
    assert "whitehat" in text_of(screened) and "c0ffeebabe.eth" in text_of(screened)


async def test_bad_arguments_are_clear_tool_errors(intel_server: ServerProcess, tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["enterprise"]) as client:
        bad_date = await client.call_tool("search_crypto_exploits", {"query": "x", "since": "2024-13-01"})
        bad_address = await client.call_tool("monitor_wallet", {"address": "0x1234"})
        fts_syntax = await client.call_tool("search_crypto_exploits", {"query": 'NEAR("a" OR) * ^ -- ;'})
        unknown = await client.call_tool("get_exploit_details", {"exploit_id": "defillama:1999-01-01:nothing"})
        bad_cursor = await client.call_tool("search_crypto_exploits", {"cursor": "not-a-cursor"})
        bad_sort = await client.call_tool("search_crypto_exploits", {"sort": "oldest"})
    assert bad_date.is_error and "since" in text_of(bad_date)
    assert bad_address.is_error and "address" in text_of(bad_address)
    assert not fts_syntax.is_error
    assert unknown.is_error and "nothing" in text_of(unknown)
    assert bad_cursor.is_error and "not a cursor from this server" in text_of(bad_cursor)
    assert bad_sort.is_error and "sort" in text_of(bad_sort)


async def test_details_show_one_incident_with_the_other_sources_differences_and_caveats(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("get_exploit_details", {"exploit_id": "blocksec:65"})
    details = result.structured_content
    assert details, text_of(result)
    assert details["incident"]["id"] == "defillama:2023-03-13:euler-v1"
    assert any("0xc310a0affe2169d1f6feec1c63dbc7f7c62a887fa48795d327d4d2da2d6b111d" == t["hash"]
               for t in details["transactions"])
    assert any(a["address"] == "0x5f259d0b76665c337c6104145894f4d1d2758b8c" for a in details["addresses"])
    blocksec = next(r for r in details["other_reports"] if r["source"] == "blocksec")
    assert blocksec["amount_usd"] == 200_000_000 and "returned_usd" not in blocksec
    assert any("more returned ($240M) than lost ($197M)" in c for c in details["amount_caveats"])
    assert "Caveat:" in text_of(result)


async def test_a_store_without_data_says_how_to_load_it(tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    env = base_env(tmp_path / "empty.db")
    process = server_factory(env).start()
    token = cli(["token", "issue", "--email", "e@example.com", "--tier", "team"], env).stdout.strip()
    async with mcp_session(process.url, token) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "curve"})
    assert result.is_error and "kamiyo-mcp ingest" in text_of(result)


def _empties(value: object, path: str = "") -> list[str]:
    if value is None or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empties(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empties(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("tool", TOOLS)
async def test_every_answer_carries_data_as_of_and_leaves_out_empty_fields(
    intel_server: ServerProcess, tier_tokens: dict[str, str], tool: str
) -> None:
    arguments = {"search_crypto_exploits": {"query": "euler"}, "assess_defi_protocol_risk": CURVE,
                 "monitor_wallet": {"address": COFFEE}, "get_exploit_details": {"exploit_id": "blocksec:65"}}[tool]
    async with mcp_session(intel_server.url, tier_tokens["enterprise"]) as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content and result.structured_content["data_as_of"].endswith("Z")
    assert "Data as of" in text_of(result)
    assert _empties(result.structured_content) == []


async def test_account_status_is_typed_and_its_text_is_a_few_lines(intel_server: ServerProcess,
                                                                   tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        schema = next(t for t in (await client.list_tools()).tools if t.name == "get_account_status").output_schema
        result = await client.call_tool("get_account_status", {})
    assert schema and schema.get("additionalProperties") is not True
    assert all(spec.get("description") for spec in schema["properties"].values())
    status = result.structured_content
    assert status and status["tier"] == "team" and _empties(status) == []
    text = text_of(result)
    assert text.startswith("Team tier, operator grant active; calls allowed") and "/120 this minute" in text
    assert not text.lstrip().startswith("{")
