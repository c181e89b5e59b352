"""The exploit-intelligence tools through the real server, the gate and the official MCP client."""

from collections.abc import Iterator

import pytest

from tests.support import DATA, ServerProcess, base_env, cli
from tests.support_mcp import mcp_session, text_of

CURVE = {"protocol": "Curve"}
COFFEE = "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = base_env(tmp_path_factory.mktemp("intel") / "kamiyo.db")
    loaded = cli(["ingest", str(DATA / "exploits")], env, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    process = ServerProcess(env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    return {
        tier: cli(["token", "issue", "--email", f"{tier}@example.com", "--tier", tier], server.env).stdout.strip()
        for tier in ("personal", "team", "enterprise")
    }


async def test_ronin_is_found_with_its_real_amount_and_date(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with mcp_session(server.url, tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "Ronin", "since": "2022-01-01"})
    assert not result.is_error and result.structured_content
    ronin = [e for e in result.structured_content["exploits"] if e["id"] == "defillama:2022-03-23:ronin-bridge"]
    assert ronin and ronin[0]["amount_usd"] == 624_000_000 and ronin[0]["date"] == "2022-03-23"


async def test_a_limit_above_the_tier_cap_is_capped_and_says_so(server: ServerProcess, tokens: dict[str, str]) -> None:
    for tier, cap in (("personal", 50), ("enterprise", 1000)):
        async with mcp_session(server.url, tokens[tier]) as client:
            result = await client.call_tool("search_crypto_exploits", {"query": "", "limit": 5000})
        assert result.structured_content, text_of(result)
        metadata = result.structured_content["metadata"]
        assert metadata["tier_cap"] == cap and metadata["returned"] == min(cap, metadata["total_matching"])
        assert len(result.structured_content["exploits"]) == metadata["returned"]


async def test_risk_detail_follows_the_tier(server: ServerProcess, tokens: dict[str, str]) -> None:
    shapes = {}
    for tier in ("personal", "team", "enterprise"):
        async with mcp_session(server.url, tokens[tier]) as client:
            result = await client.call_tool("assess_defi_protocol_risk", CURVE)
        assert result.structured_content, text_of(result)
        shapes[tier] = set(result.structured_content)
        assert 0 <= result.structured_content["risk_score"] <= 100
    assert "exploit_count" not in shapes["personal"] and "risk_factors" not in shapes["personal"]
    assert "exploit_count" in shapes["team"] and "risk_factors" not in shapes["team"]
    assert {"risk_factors", "recommendations", "peer_comparison"} <= shapes["enterprise"]


async def test_wallet_screening_is_refused_below_team_and_links_incidents_above(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    async with mcp_session(server.url, tokens["personal"]) as client:
        refused = await client.call_tool("monitor_wallet", {"address": COFFEE})
    assert refused.is_error and "team tier" in text_of(refused) and "/pricing" in text_of(refused)
    async with mcp_session(server.url, tokens["team"]) as client:
        screened = await client.call_tool("monitor_wallet", {"address": COFFEE})
    assert screened.structured_content, text_of(screened)
    assert screened.structured_content["linked"] is True
    assert all(link["role"] == "attacker" for link in screened.structured_content["incident_links"])


async def test_bad_arguments_are_clear_tool_errors(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with mcp_session(server.url, tokens["enterprise"]) as client:
        bad_date = await client.call_tool("search_crypto_exploits", {"query": "x", "since": "2024-13-01"})
        bad_address = await client.call_tool("monitor_wallet", {"address": "0x1234"})
        fts_syntax = await client.call_tool("search_crypto_exploits", {"query": 'NEAR("a" OR) * ^ -- ;'})
        unknown = await client.call_tool("get_exploit_details", {"exploit_id": "defillama:1999-01-01:nothing"})
    assert bad_date.is_error and "since" in text_of(bad_date)
    assert bad_address.is_error and "address" in text_of(bad_address)
    assert not fts_syntax.is_error
    assert unknown.is_error and "nothing" in text_of(unknown)


async def test_details_list_linked_reports_and_addresses(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with mcp_session(server.url, tokens["team"]) as client:
        result = await client.call_tool("get_exploit_details", {"exploit_id": "blocksec:65"})
    assert result.structured_content, text_of(result)
    text = str(result.structured_content)
    assert "0xc310a0affe2169d1f6feec1c63dbc7f7c62a887fa48795d327d4d2da2d6b111d" in text
    assert "defillama:2023-03-13:euler-v1" in text and "0x5f259d0b76665c337c6104145894f4d1d2758b8c" in text


async def test_a_store_without_data_says_how_to_load_it(tmp_path, server_factory) -> None:  # type: ignore[no-untyped-def]
    env = base_env(tmp_path / "empty.db")
    process = server_factory(env).start()
    token = cli(["token", "issue", "--email", "e@example.com", "--tier", "team"], env).stdout.strip()
    async with mcp_session(process.url, token) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "curve"})
    assert result.is_error and "kamiyo-mcp ingest" in text_of(result)
