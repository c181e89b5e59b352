"""KAMIYO_INTEL_REFRESH_INTERVAL: 6 h unless set; a duration (seconds, or with s/m/h/d), 0 off."""

import pytest

from kamiyo_mcp.settings import SettingsError, load_settings


@pytest.mark.parametrize(("raw", "seconds"), [(None, 21_600), ("3600", 3600), ("30m", 1800), ("12h", 43_200),
                                              ("1d", 86_400), ("0", 0)])
def test_the_refresh_interval_is_six_hours_unless_set(raw: str | None, seconds: float) -> None:
    env = {} if raw is None else {"KAMIYO_INTEL_REFRESH_INTERVAL": raw}
    assert load_settings(env).intel_refresh_interval == seconds


@pytest.mark.parametrize("raw", ["6 hours", "-1h", "never"])
def test_a_bad_refresh_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"KAMIYO_INTEL_REFRESH_INTERVAL": raw})
    assert str(caught.value).startswith("KAMIYO_INTEL_REFRESH_INTERVAL:")
