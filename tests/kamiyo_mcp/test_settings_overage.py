"""Settings of metered overage and the tiers file: both halves of overage or neither; a bad file stops start-up."""

from pathlib import Path

import pytest

from kamiyo_mcp.settings import SettingsError, load_settings
from tests.support import base_env, cli


def test_a_tiers_file_reaches_the_billing_config(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text("[team]\ncalls_per_day = 5\n")
    settings = load_settings({"KAMIYO_TIERS_FILE": str(path)})
    assert settings.billing.tiers["team"].calls_per_day == 5


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"STRIPE_PRICE_MCP_OVERAGE": "price_over"}, "STRIPE_METER_EVENT_NAME", "must be set with"),
        ({"STRIPE_METER_EVENT_NAME": "kamiyo_calls"}, "STRIPE_PRICE_MCP_OVERAGE", "must be set with"),
        ({"STRIPE_PRICE_MCP_OVERAGE": "not a price", "STRIPE_METER_EVENT_NAME": "x"}, "STRIPE_PRICE_MCP_OVERAGE",
         "price id"),
        ({"STRIPE_PRICE_MCP_OVERAGE": "price_t", "STRIPE_PRICE_MCP_TEAM": "price_t", "STRIPE_METER_EVENT_NAME": "x"},
         "STRIPE_PRICE_MCP_OVERAGE", "differ"),
        ({"STRIPE_PRICE_MCP_OVERAGE": "price_o", "STRIPE_METER_EVENT_NAME": "bad name!"}, "STRIPE_METER_EVENT_NAME",
         "letters"),
        ({"KAMIYO_METER_EVENTS_PER_SECOND": "5000"}, "KAMIYO_METER_EVENTS_PER_SECOND", "between 1 and 1000"),
        ({"KAMIYO_TIERS_FILE": "/nonexistent/tiers.toml"}, "KAMIYO_TIERS_FILE", "cannot read"),
    ],
)
def test_a_bad_overage_setting_names_its_variable(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert str(caught.value).startswith(variable + ":") and words in str(caught.value)


def test_overage_is_sold_only_with_billing_the_price_and_the_meter() -> None:
    both = {"STRIPE_PRICE_MCP_OVERAGE": "price_over", "STRIPE_METER_EVENT_NAME": "kamiyo_calls"}
    assert not load_settings(both).billing.overage_enabled
    assert load_settings({**both, "STRIPE_SECRET_KEY": "sk_test_x"}).billing.overage_enabled


def test_serve_with_a_bad_tiers_key_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text("[team]\ncalls_per_dya = 5\n")
    result = cli(["serve", "--port", "1"], {**base_env(tmp_path / "k.db"), "KAMIYO_TIERS_FILE": str(path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "KAMIYO_TIERS_FILE" in lines[0] and "[team] calls_per_dya" in lines[0]
