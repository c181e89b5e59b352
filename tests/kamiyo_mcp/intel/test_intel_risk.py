"""assess_defi_protocol_risk against the ingested shared data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kamiyo_mcp.intel.errors import IntelInputError, NoIncidentDataError
from kamiyo_mcp.intel.names import name_key
from kamiyo_mcp.intel.queries import assess_protocol_risk
from kamiyo_mcp.intel.store import IntelStore

NOW = datetime(2026, 6, 15, tzinfo=UTC)


async def _assess(store: IntelStore, protocol: str, detail: str = "full", **kw) -> dict:
    kw.setdefault("chain", None)
    kw.setdefault("time_window_days", 90)
    return (await assess_protocol_risk(store, protocol=protocol, detail=detail, now=NOW, **kw)).wire()


async def test_personal_tier_gets_score_level_and_window_only(store: IntelStore) -> None:
    result = await _assess(store, "Ronin", "basic")
    assert {"risk_score", "risk_level", "time_window_days"} <= set(result)
    assert "exploit_count" not in result and "risk_factors" not in result


async def test_team_tier_adds_counts_losses_and_recent_exploits_counting_each_incident_once(store: IntelStore) -> None:
    result = await _assess(store, "ronin bridge", "summary", time_window_days=3650)
    assert result["exploit_count"] == 2
    assert result["total_loss_usd"] >= 624_000_000
    assert result["last_exploit_date"] == "2024-08-06"
    assert [e["date"] for e in result["recent_exploits"]] == ["2024-08-06", "2022-03-23"]
    assert "risk_factors" not in result


async def test_enterprise_tier_adds_factors_recommendations_and_peers(store: IntelStore) -> None:
    result = await _assess(store, "Ronin")
    assert set(result["risk_factors"]) == {"frequency", "severity", "recency", "repeat"}
    assert result["recommendations"]
    assert 0 < result["peer_comparison"]["percentile"] <= 100
    assert result["peer_comparison"]["protocols_compared"] > 500


@pytest.mark.parametrize("spelling", ["Euler", "euler finance", "EulerFinance", "EULER  V1"])
async def test_protocol_names_match_forgivingly_and_count_one_incident(store: IntelStore, spelling: str) -> None:
    result = await _assess(store, spelling, "summary", time_window_days=3650)
    assert "Euler V1" in result["matched_protocols"]
    assert 197_000_000 <= result["total_loss_usd"]
    assert result["exploit_count"] == len({e["id"] for e in result["recent_exploits"]}) or result["exploit_count"] > 5


async def test_an_unknown_protocol_scores_zero_with_suggestions(store: IntelStore) -> None:
    result = await _assess(store, "Eulr Financ")
    assert (result["risk_score"], result["risk_level"]) == (0, "low")
    assert name_key(result["suggestions"][0]) == "euler"
    assert "not that the protocol is safe" in result["note"]


async def test_a_recent_incident_inside_the_window_raises_the_level(store: IntelStore) -> None:
    recent = await _assess(store, "StablR")
    assert recent["risk_factors"]["recency"] == 100.0
    assert recent["risk_level"] in ("medium", "high", "critical")


async def test_chain_filter_restricts_incidents(store: IntelStore) -> None:
    everywhere = await _assess(store, "Ronin", "summary", time_window_days=3650)
    on_bsc = await _assess(store, "Ronin", "summary", chain="bsc", time_window_days=3650)
    assert on_bsc["exploit_count"] < everywhere["exploit_count"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": ""}, "protocol: expected a protocol name"),
        ({"protocol": "   "}, "protocol: expected a protocol name"),
        ({"protocol": "x", "time_window_days": 0}, "time_window_days: must be at least 1"),
        ({"protocol": "x", "time_window_days": -5}, "time_window_days: must be at least 1"),
        ({"protocol": "x", "time_window_days": 10**9}, "time_window_days: at most"),
        ({"protocol": "x", "chain": "atlantis"}, "chain: unknown chain 'atlantis'"),
    ],
)
async def test_bad_arguments_get_precise_errors(store: IntelStore, kwargs: dict, message: str) -> None:
    protocol = kwargs.pop("protocol")
    with pytest.raises(IntelInputError, match=message):
        await _assess(store, protocol, **kwargs)


async def test_an_empty_store_says_no_data_is_loaded(empty_store: IntelStore) -> None:
    with pytest.raises(NoIncidentDataError):
        await _assess(empty_store, "Euler")


@pytest.mark.parametrize("detail", ["basic", "summary", "full"])
async def test_one_protocol_scores_the_same_whatever_the_spelling(store: IntelStore, detail: str) -> None:
    spellings = ("Curve", "Curve DEX", "curve finance", "CurveFinance")
    answers = [await _assess(store, spelling, detail) for spelling in spellings]
    assert len({(a["risk_score"], a["risk_level"], tuple(a["matched_protocols"])) for a in answers}) == 1
    if detail != "basic":
        assert {a["exploit_count"] for a in answers} == {answers[0]["exploit_count"]}


async def test_every_incident_of_a_listed_protocol_is_counted(store: IntelStore) -> None:
    curve = await _assess(store, "Curve", "summary", time_window_days=3650)
    # DeFiLlama lists two Curve DEX incidents: the 2023-07-30 Vyper reentrancy and the 2022-08-09 DNS hijack.
    ids = {e["id"] for e in curve["recent_exploits"]}
    assert {"defillama:2023-07-30:curve-dex", "defillama:2022-08-09:curve-dex"} <= ids
    assert "Curve DEX" in curve["matched_protocols"] and curve["exploit_count"] >= 2
