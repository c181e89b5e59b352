"""KAMIYO_TIERS_FILE: any field of the tier table by tier name, checked whole, one line per problem."""

from pathlib import Path

import pytest

from billing.errors import ConfigurationError
from billing.tier_file import apply_overrides, load_tier_file
from billing.tiers import TIERS, TierRank


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiers.toml"
    path.write_text(text)
    return path


def test_a_file_overrides_only_the_fields_it_names(tmp_path: Path) -> None:
    table = load_tier_file(write(tmp_path, "[team]\ncalls_per_day = 5\n"
                                 + "overage = true\n[personal]\noverage_usd_per_1000_calls = 4.5\n"))
    assert table["team"].calls_per_day == 5 and table["team"].overage is True
    assert table["team"].calls_per_minute == TIERS["team"].calls_per_minute
    assert table["personal"].overage_usd_per_1000_calls == 4.5
    assert table["enterprise"] == TIERS["enterprise"]


def test_tiers_iterate_in_rank_order_and_the_next_tier_up_is_known() -> None:
    table = apply_overrides({})
    assert [t.rank for t in table] == [TierRank.PERSONAL, TierRank.TEAM, TierRank.ENTERPRISE]
    assert table.next_above(table["personal"]) == table["team"]
    assert table.next_above(table["enterprise"]) is None


def test_the_wallet_tool_follows_the_tables_flag() -> None:
    table = apply_overrides({"personal": {"monitor_wallet": True}})
    assert table.min_tier_for("monitor_wallet") == table["personal"]
    assert table.allows(table["personal"], "monitor_wallet")
    assert apply_overrides({}).min_tier_for("monitor_wallet") == TIERS["team"]
    assert apply_overrides({}).min_tier_for("search_crypto_exploits") is None


def test_an_overage_price_converts_exactly_to_millionths_per_call() -> None:
    assert apply_overrides({"team": {"overage_usd_per_1000_calls": 0.125}})["team"].overage_micro_usd_per_call == 125


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"gold": {"calls_per_day": 5}}, "[gold] is not a tier"),
        ({"team": {"calls_per_dya": 5}}, "[team] calls_per_dya is not a tier field"),
        ({"team": {"rank": 9}}, "[team] rank cannot be overridden"),
        ({"team": {"calls_per_day": "lots"}}, "[team] calls_per_day must be a whole number"),
        ({"team": {"calls_per_day": 0}}, "[team] calls_per_day must be a whole number from 1"),
        ({"team": {"calls_per_minute": True}}, "[team] calls_per_minute must be a whole number"),
        ({"team": {"overage": "yes"}}, "[team] overage must be true or false"),
        ({"team": {"risk_detail": "most"}}, "[team] risk_detail must be one of basic, summary, full"),
        ({"team": {"overage_usd_per_1000_calls": -1}}, "[team] overage_usd_per_1000_calls must be a number"),
        ({"team": {"overage_usd_per_1000_calls": 0.0001}}, "at most 3 decimals"),
        ({"personal": {"overage": True}}, "[personal] overage_usd_per_1000_calls must be above 0"),
        ({"enterprise": {"monitor_wallet": False}}, "[enterprise] monitor_wallet: a higher tier cannot lose"),
        ({"team": 5}, "team must be a [team] table"),
    ],
)
def test_a_bad_override_is_refused_in_one_line_naming_the_key(document: dict, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(document)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_toml_or_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        load_tier_file(write(tmp_path, "[team\ncalls_per_day = 5"))
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_tier_file(tmp_path / "absent.toml")
