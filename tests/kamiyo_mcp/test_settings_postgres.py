"""Settings for a PostgreSQL store: the URL is accepted, the secret must be given, intel stays local."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamiyo_mcp.settings import SettingsError, default_database_url, load_settings
from tests.support import JWT_SECRET

URL = "postgresql://kamiyo:pw@db.internal:5432/kamiyo"


@pytest.mark.parametrize("url", [URL, URL.replace("postgresql://", "postgres://")])
def test_a_postgres_url_selects_postgres_with_a_local_intel_file(url: str, tmp_path: Path) -> None:
    settings = load_settings({"KAMIYO_DATABASE_URL": url, "MCP_JWT_SECRET": JWT_SECRET,
                              "KAMIYO_INTEL_DATABASE": str(tmp_path / "intel.db")})
    assert settings.database_url == url and settings.database_path is None
    assert settings.intel_path == tmp_path / "intel.db"
    assert settings.database_label == "postgresql://db.internal:5432/kamiyo"  # never the password


def test_postgres_without_a_jwt_secret_fails_naming_mcp_jwt_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"KAMIYO_DATABASE_URL": URL})
    assert caught.value.variable == "MCP_JWT_SECRET" and "PostgreSQL" in str(caught.value)
    settings = load_settings({"KAMIYO_DATABASE_URL": URL, "MCP_JWT_SECRET": JWT_SECRET})
    with pytest.raises(SettingsError):
        _ = settings.secret_file


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KAMIYO_DATABASE_URL": "postgresql://db.internal:5432/"}, "KAMIYO_DATABASE_URL"),
        ({"KAMIYO_DATABASE_POOL_MAX": "0"}, "KAMIYO_DATABASE_POOL_MAX"),
        ({"KAMIYO_DATABASE_POOL_MIN": "20", "KAMIYO_DATABASE_POOL_MAX": "5"}, "KAMIYO_DATABASE_POOL_MIN"),
    ],
)
def test_a_bad_postgres_setting_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"KAMIYO_DATABASE_URL": URL, "MCP_JWT_SECRET": JWT_SECRET, **env})
    assert caught.value.variable == variable


def test_with_sqlite_the_intel_tables_default_to_a_file_of_their_own_beside_the_billing_file(tmp_path: Path) -> None:
    settings = load_settings({"KAMIYO_DATABASE_URL": str(tmp_path / "k.db")})
    assert settings.database_path == tmp_path / "k.db"
    assert settings.intel_path == tmp_path / "k.intel.db"
    assert settings.intel_previous_path == tmp_path / "k.db"  # where earlier versions kept them: copied once
    assert (settings.database_pool_min, settings.database_pool_max) == (2, 10)
    for name, intel in (("billing.sqlite3", "billing.intel.sqlite3"), ("kamiyo", "kamiyo.intel.db")):
        assert load_settings({"KAMIYO_DATABASE_URL": f"sqlite:///{tmp_path / name}"}).intel_path == tmp_path / intel


def test_kamiyo_intel_database_overrides_the_default_intel_file(tmp_path: Path) -> None:
    settings = load_settings({"KAMIYO_DATABASE_URL": str(tmp_path / "k.db"),
                              "KAMIYO_INTEL_DATABASE": str(tmp_path / "elsewhere" / "incidents.db")})
    assert settings.intel_path == tmp_path / "elsewhere" / "incidents.db"
    assert settings.intel_previous_path == tmp_path / "k.db"
    billing = str(tmp_path / "k.db")
    shared = load_settings({"KAMIYO_DATABASE_URL": billing, "KAMIYO_INTEL_DATABASE": billing})
    assert shared.intel_path == shared.database_path and shared.intel_previous_path is None  # the earlier layout


def test_with_postgres_the_default_intel_file_is_intel_db_in_the_user_data_directory() -> None:
    settings = load_settings({"KAMIYO_DATABASE_URL": URL, "MCP_JWT_SECRET": JWT_SECRET})
    assert settings.intel_path == Path(default_database_url()).with_name("intel.db")  # the user data directory
    assert settings.intel_previous_path is None
