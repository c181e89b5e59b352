"""search_crypto_exploits and get_exploit_details against the ingested shared data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kamiyo_mcp.intel.errors import IntelInputError, NoIncidentDataError
from kamiyo_mcp.intel.names import name_words
from kamiyo_mcp.intel.queries import TIER_CAPS, exploit_details, search_exploits
from kamiyo_mcp.intel.store import IntelStore


async def _search(store: IntelStore, query: str = "", *, tier_cap: int = 50, **kwargs: Any) -> dict:
    return (await search_exploits(store, query=query, tier_cap=tier_cap, **kwargs)).wire()


async def test_ronin_is_found_with_the_readme_facts(store: IntelStore) -> None:
    result = await _search(store, "ronin", sort="newest")
    ronin = next(e for e in result["exploits"] if e["id"] == "defillama:2022-03-23:ronin-bridge")
    assert (ronin["date"], ronin["amount_usd"], ronin["chains"]) == ("2022-03-23", 624_000_000, ["Ethereum"])
    assert ronin["technique"] == "Private Key Compromised (Social Engineering)"
    assert ronin["classification"] == "Infrastructure"
    assert [e["date"] for e in result["exploits"]] == sorted((e["date"] for e in result["exploits"]), reverse=True)


async def test_one_incident_reported_by_three_sources_appears_once(store: IntelStore) -> None:
    result = await _search(store, "euler", since="2023-03-01")
    euler = [e for e in result["exploits"] if e["date"] == "2023-03-13"]
    assert [e["id"] for e in euler] == ["defillama:2023-03-13:euler-v1"]


async def test_search_covers_technique_and_classification_words(store: IntelStore) -> None:
    by_technique = await _search(store, "trusted root")
    assert "defillama:2022-08-01:nomad" in [e["id"] for e in by_technique["exploits"]]
    rugpulls = await _search(store, "rugpull", limit=200, tier_cap=200)
    assert rugpulls["total_matching"] >= 30


async def test_empty_query_lists_the_newest_incidents_matching_filters(store: IntelStore) -> None:
    result = await _search(store, "", chain="solana", since="2022-01-01", limit=500, tier_cap=1000)
    assert result["exploits"]
    assert all("Solana" in e["chains"] for e in result["exploits"])
    assert all(e["date"] >= "2022-01-01" for e in result["exploits"])
    assert "defillama:2022-02-02:portal" in [e["id"] for e in result["exploits"]]


@pytest.mark.parametrize("spelling", ["BSC", "bsc", "Bsc", "binance smart chain", "bnb"])
async def test_chain_filter_is_case_insensitive_and_knows_aliases(store: IntelStore, spelling: str) -> None:
    result = await _search(store, chain=spelling)
    assert result["understood_as"]["chain"] == "BSC"
    assert result["total_matching"] > 300


@pytest.mark.parametrize(("tier", "cap"), sorted(TIER_CAPS.items()))
async def test_a_limit_above_the_tier_cap_is_capped_and_the_cap_stated(store: IntelStore, tier: str, cap: int) -> None:
    result = await _search(store, limit=10**9, tier_cap=cap)
    assert result["pageable"] == cap and 0 < len(result["exploits"]) <= cap
    assert f"cap of {cap}" in result["note"]
    json.dumps(result)


async def test_result_rows_have_the_documented_fields(store: IntelStore) -> None:
    result = await _search(store, "bybit")
    assert set(result["exploits"][0]) == {
        "id",
        "date",
        "protocol",
        "chains",
        "classification",
        "technique",
        "amount_usd",
        "returned_usd",
        "source",
    }  # DeFiLlama has no source_url: an empty field is left out
    assert set(result) >= {"total_matching", "returned", "pageable", "first", "understood_as", "data_as_of"}
    assert result["exploits"][0]["returned_usd"] == 1_400_000_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "2024-13-01"}, "since: '2024-13-01' is not an ISO date"),
        ({"chain": "narnia"}, "chain: unknown chain 'narnia'"),
        ({"limit": -1}, "limit: must be at least 1, got -1"),
        ({"limit": 0}, "limit: must be at least 1"),
        ({"limit": "10"}, "limit: expected a positive integer"),
        ({"query": '"*)('}, "no searchable words"),
    ],
)
async def test_bad_arguments_get_precise_errors(store: IntelStore, kwargs: dict, message: str) -> None:
    with pytest.raises(IntelInputError, match=message.replace("(", r"\(")):
        await _search(store, **kwargs)


@pytest.mark.parametrize(
    "query",
    [
        "euler' OR 1=1 --",
        'NEAR("a" "b")',
        "col:value*",
        "^start",
        "a AND OR NOT",
        "'; DROP TABLE intel_incidents; --",
        "ünïcödé",
        "🦊 fox",
    ],
)
async def test_fts_and_sql_syntax_in_queries_is_searched_as_words(store: IntelStore, query: str) -> None:
    result = await _search(store, query)
    assert "understood_as" in result
    assert await store.incident_count() == 1680


async def test_details_show_every_report_address_and_transaction_of_the_incident(store: IntelStore) -> None:
    details = (await exploit_details(store, "blocksec:65")).wire()
    assert details["incident"]["id"] == "defillama:2023-03-13:euler-v1" and details["requested_id"] == "blocksec:65"
    assert {r["id"] for r in details["other_reports"]} == {"blocksec:65", "defihacklabs:2023-03-13:eulerfinance"}
    hashes = {t["hash"] for t in details["transactions"]}
    assert "0xc310a0affe2169d1f6feec1c63dbc7f7c62a887fa48795d327d4d2da2d6b111d" in hashes
    attackers = {a["address"] for a in details["addresses"] if "attacker" in a["roles"]}
    assert {"0x5f259d0b76665c337c6104145894f4d1d2758b8c", "0xb2698c2d99ad2c302a95a8db26b08d17a77cedd4"} <= attackers
    assert details["incident"]["amount_usd"] == 197_000_000
    json.dumps(details)


async def test_details_of_a_single_source_incident(store: IntelStore) -> None:
    details = (await exploit_details(store, "defihacklabs:2026-08-20:flashstakev2")).wire()
    roles = {(role, a["address"]) for a in details["addresses"] for role in a["roles"]}
    assert ("attacker", "0xa521f8c249eb055796b765642eed78c01cd620d1") in roles
    assert ("attack_contract", "0xfa9d717678ddaf60a123c6ba0506521e923793d0") in roles
    assert ("victim_contract", "0xc9fc5a6007c9801ebae1813d4d03208c4e85be44") in roles
    assert "amount_usd" not in details["incident"] and details["incident"]["chains"] == ["Ethereum"]
    assert "other_reports" not in details and "amount_caveats" not in details


@pytest.mark.parametrize(
    ("ident", "message"),
    [("", "expected an incident id"), ("defillama:1999-01-01:nothing", "no incident"), ("x" * 300, "too long")],
)
async def test_unknown_or_bad_ids_get_clear_errors(store: IntelStore, ident: str, message: str) -> None:
    with pytest.raises(IntelInputError, match=message):
        await exploit_details(store, ident)


async def test_an_empty_store_says_no_data_is_loaded_and_how_to_load_it(empty_store: IntelStore) -> None:
    with pytest.raises(NoIncidentDataError, match="kamiyo-mcp ingest <source>"):
        await _search(empty_store, "euler")
    with pytest.raises(NoIncidentDataError):
        await exploit_details(empty_store, "blocksec:65")


async def _all_rows(store: IntelStore, query: str, sort: str) -> list[dict[str, Any]]:
    """Every result of a search, all pages followed."""
    result = await _search(store, query, sort=sort, limit=1000, tier_cap=2000)
    rows = list(result["exploits"])
    while "next_cursor" in result:
        result = await _search(store, cursor=result["next_cursor"], limit=1000, tier_cap=2000)
        rows += result["exploits"]
    assert len(rows) == result["total_matching"] > 5
    return rows


async def _named(store: IntelStore, row: dict[str, Any], word: str) -> bool:
    """Whether a report of the row's incident has a name word starting with ``word`` (not only its technique)."""
    members = await store.group_members(row["id"])
    words = {w for m in members for w in [*name_words(m.incident.protocol), *m.incident.protocol.lower().split()]}
    return any(w.startswith(word) for w in words)


@pytest.mark.parametrize("word", ["curve", "bridge", "oracle"])
async def test_relevance_ranks_every_name_match_above_every_technique_only_match(store: IntelStore,
                                                                                 word: str) -> None:
    rows = await _all_rows(store, word, "relevance")
    named = [await _named(store, row, word) for row in rows]
    assert True in named and False in named, f"'{word}' should match both names and techniques"
    assert named == sorted(named, reverse=True), [(r["protocol"], r.get("technique")) for r in rows]
    newest = await _all_rows(store, word, "newest")
    assert [r["id"] for r in newest] != [r["id"] for r in rows]  # relevance is not the date order


@pytest.mark.parametrize("query", ["", "flash loan", "bridge"])
async def test_newest_and_largest_order_every_result_as_their_names_say(store: IntelStore, query: str) -> None:
    newest = await _all_rows(store, query, "newest")
    assert [r["date"] for r in newest] == sorted((r["date"] for r in newest), reverse=True)
    largest = await _all_rows(store, query, "largest")
    stated = [r["amount_usd"] for r in largest if "amount_usd" in r]
    assert stated == sorted(stated, reverse=True) and stated[0] > stated[-1]
    # Rows without a stated loss come last, not first.
    assert all("amount_usd" not in r for r in largest[len(stated):])
    assert {r["id"] for r in largest} == {r["id"] for r in newest}
