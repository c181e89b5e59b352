import os
import stat
from pathlib import Path

import pytest

from kamiyo_mcp.secret_file import resolve_jwt_secret
from kamiyo_mcp.settings import SettingsError, load_settings
from tests.support import base_env, cli


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"MCP_JWT_SECRET": "too-short"}, "MCP_JWT_SECRET", "at least 32 bytes"),
        ({"MCP_JWT_ALGORITHM": "RS256"}, "MCP_JWT_ALGORITHM", "only HS256"),
        ({"MCP_JWT_ALGORITHM": "none"}, "MCP_JWT_ALGORITHM", "only HS256"),
        ({"KAMIYO_DATABASE_URL": "mysql://db/kamiyo"}, "KAMIYO_DATABASE_URL", "unsupported"),
        ({"KAMIYO_DATABASE_URL": "postgresql://db/kamiyo"}, "MCP_JWT_SECRET", "PostgreSQL"),
        ({"MCP_TOKEN_EXPIRY_DAYS": "soon"}, "MCP_TOKEN_EXPIRY_DAYS", "whole number"),
        ({"KAMIYO_PUBLIC_URL": "ftp://x"}, "KAMIYO_PUBLIC_URL", "http(s) URL"),
        ({"STRIPE_SECRET_KEY": "pk_test_123"}, "STRIPE_SECRET_KEY", "secret key"),
        ({"SMTP_PORT": "99999"}, "SMTP_PORT", "between 1 and 65535"),
        ({"KAMIYO_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "KAMIYO_TRUSTED_PROXIES", "'proxy.internal'"),
        ({"KAMIYO_TRUSTED_PROXIES": "*"}, "KAMIYO_TRUSTED_PROXIES", "CIDR"),
        ({"KAMIYO_METRICS_TOKEN": "short"}, "KAMIYO_METRICS_TOKEN", "at least 24 characters"),
    ],
)
def test_a_bad_setting_fails_with_one_line_naming_the_variable(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(variable + ":") and words in message and "\n" not in message


def test_a_fresh_environment_needs_no_settings() -> None:
    settings = load_settings({})
    assert settings.database_path.name == "kamiyo.db"
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.jwt_secret is None and settings.token_expiry_days == 365


def test_the_cli_exits_2_with_the_variable_named(tmp_path: Path) -> None:
    result = cli(["token", "list"], {**base_env(tmp_path / "k.db"), "MCP_JWT_SECRET": "short"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MCP_JWT_SECRET" in lines[0] and "short" not in lines[0].split(":", 2)[-1]


def test_without_a_secret_the_first_start_creates_a_private_secret_file_reused_later(tmp_path: Path) -> None:
    settings = load_settings({"KAMIYO_DATABASE_URL": str(tmp_path / "k.db")})
    secret = resolve_jwt_secret(settings)
    mode = stat.S_IMODE(os.stat(settings.secret_file).st_mode)
    assert mode == 0o600 and len(secret) >= 32
    assert resolve_jwt_secret(settings) == secret


def test_an_explicit_secret_wins_over_the_secret_file(tmp_path: Path) -> None:
    implicit = load_settings({"KAMIYO_DATABASE_URL": str(tmp_path / "k.db")})
    resolve_jwt_secret(implicit)
    explicit = load_settings({"KAMIYO_DATABASE_URL": str(tmp_path / "k.db"), "MCP_JWT_SECRET": "e" * 40})
    assert resolve_jwt_secret(explicit) == "e" * 40


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = ("from kamiyo_mcp.settings import load_settings; from kamiyo_mcp.secret_file import resolve_jwt_secret; "
              f"print(resolve_jwt_secret(load_settings({{'KAMIYO_DATABASE_URL': {str(tmp_path / 'k.db')!r}}})))")
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    secrets = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert [p.name for p in tmp_path.iterdir()] == ["k.db.jwt-secret"]


def test_settings_never_show_secrets_in_their_repr() -> None:
    settings = load_settings({"MCP_JWT_SECRET": "s" * 40, "KAMIYO_TOKEN": "the.user.token",
                              "KAMIYO_DATABASE_URL": "postgresql://kamiyo:hunter2@db/kamiyo"})
    text = repr(settings)
    assert "s" * 40 not in text and "the.user.token" not in text and "hunter2" not in text


def test_trusted_proxies_are_cidrs_normalized_and_none_by_default() -> None:
    assert load_settings({}).trusted_proxies == ()
    settings = load_settings({"KAMIYO_TRUSTED_PROXIES": " 10.1.2.3, 192.168.0.0/16 ,fd00::/8,::1"})
    assert settings.trusted_proxies == ("10.1.2.3/32", "192.168.0.0/16", "fd00::/8", "::1/128")
