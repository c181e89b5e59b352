"""Logging: libraries that print parameters stay quiet at DEBUG, and secret-shaped text is redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from billing.oauth.secret import (
    CLIENT_SECRET_PREFIX,
    CODE_PREFIX,
    LINK_PREFIX,
    REFRESH_PREFIX,
    REQUEST_PREFIX,
    SESSION_PREFIX,
    new_secret,
)
from billing.tokens import TokenCodec
from kamiyo_mcp.logs import CLAMPED, RedactSecrets, configure_logging, redact
from tests.support import JWT_SECRET, webhook_secret


@pytest.fixture
def restored_levels() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in CLAMPED}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for handler in logging.getLogger().handlers:
        for added in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(added)


def test_parameter_printing_libraries_log_nothing_below_warning_even_at_debug(restored_levels: None) -> None:
    configure_logging("DEBUG")
    for name in ("aiosqlite", "httpx", "httpcore", "stripe", "aiosmtplib", "asyncpg", "uvicorn.access"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name


def test_every_secret_shape_is_redacted_from_a_log_line() -> None:
    token, _ = TokenCodec(JWT_SECRET).mint(sub="usr_1", tier="team", sid="sub_1", now=1_900_000_000,
                                           expires_at=1_900_086_400)
    session = "cs_live_" + "a1B2c3" * 10
    key = "sk_" + "live_" + "Z9" * 12
    signing = webhook_secret("abcdefghijklmnop0123")
    code = "Q1w2E3r4T5y6U7i8O9p0-_abcdefghijklmnopqrs"
    secrets = {
        f"minted {token}": token,
        f"GET /api/billing/checkout-session/{session} 200": session,
        f"GET /claim?code={code} HTTP/1.1": code,
        'body {"claim_code": "Q1w2E3r4T5y6U7i8O9p0"}': "Q1w2E3r4T5y6U7i8O9p0",
        f"stripe key {key}": key,
        f"signing with {signing}": signing,
        "Authorization: Bearer abc.def-ghi_jkl~mno": "abc.def-ghi_jkl~mno",
    }
    for line, secret in secrets.items():
        assert secret not in redact(line), line


def test_every_secret_of_the_oauth_flow_is_redacted_from_a_log_line() -> None:
    for prefix in (REQUEST_PREFIX, LINK_PREFIX, CODE_PREFIX, REFRESH_PREFIX, SESSION_PREFIX, CLIENT_SECRET_PREFIX):
        secret = new_secret(prefix)
        for line in (f"exchanging {secret}", f'{{"refresh_token": "{secret}"}}', f"refresh_token={secret}&x=1",
                     f"cookie kamiyo_session={secret}; path=/"):
            assert secret[len(prefix):] not in redact(line), line
            assert prefix + "<redacted>" in redact(line), line


def test_the_filter_redacts_arguments_and_tracebacks_of_a_record() -> None:
    session = "cs_test_" + "x1" * 20
    try:
        raise ValueError(f"no such session {session}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "lookup of %s failed", (session,), sys.exc_info())
    assert RedactSecrets().filter(record)
    assert session not in record.getMessage() and session not in (record.exc_text or "")
    assert "ValueError" in (record.exc_text or "")
