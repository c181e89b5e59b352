"""KAMIYO_RECONCILE_INTERVAL: a duration (seconds, or with s/m/h/d), 0 off; a bad one stops start-up."""

from pathlib import Path

import pytest

from kamiyo_mcp.settings import DEFAULT_RECONCILE_INTERVAL, SettingsError, load_settings
from tests.support import base_env, cli


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, DEFAULT_RECONCILE_INTERVAL), ("3600", 3600), ("90s", 90), ("15m", 900), ("1h", 3600), ("2D", 172_800),
    ("0", 0), (" 0.5m ", 30),
])
def test_the_interval_is_read_as_a_duration(raw: str | None, seconds: float) -> None:
    env = {} if raw is None else {"KAMIYO_RECONCILE_INTERVAL": raw}
    assert load_settings(env).reconcile_interval == seconds


@pytest.mark.parametrize("raw", ["hourly", "-5", "0.5", "31d", "nan", "inf"])
def test_a_bad_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"KAMIYO_RECONCILE_INTERVAL": raw})
    assert str(caught.value).startswith("KAMIYO_RECONCILE_INTERVAL:")


def test_serve_refuses_to_start_with_a_bad_interval(tmp_path: Path) -> None:
    result = cli(["serve", "--port", "1"], base_env(tmp_path / "kamiyo.db", KAMIYO_RECONCILE_INTERVAL="soon"))
    assert result.returncode == 2
    assert result.stderr.strip() == ("kamiyo-mcp: configuration error: KAMIYO_RECONCILE_INTERVAL: must be a duration "
                                     "such as 3600, 15m or 1h, or 0 for off (got 'soon')")
