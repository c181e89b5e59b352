"""Logging for the server and the CLI: one format on stderr, and no secret at any level.

Libraries that print what they send are clamped to WARNING whatever `KAMIYO_LOG_LEVEL` says:
aiosqlite logs every SQL statement with its parameters at DEBUG (claim hashes, mail bodies,
webhook payloads), httpx/httpcore and stripe log request URLs and bodies (a Checkout Session id in
a Stripe path, a customer's details), aiosmtplib the SMTP conversation (the mail and its claim
link), asyncpg its connections, uvicorn.access request lines with their query strings
(`/claim?code=...`). Under the clamp, a filter on the handler redacts anything shaped like a
secret from every record (a JWT, a Checkout Session id, a `code=`/`session_id=` query value, a
Stripe key, a webhook secret, a bearer credential, any of the OAuth flow's prefixed secrets): a net
for what no clamp foresaw.
"""

from __future__ import annotations

import logging
import re
import sys

from billing.claims import redact_session_ids

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CLAMPED = ("aiosqlite", "asyncpg", "httpx", "httpcore", "stripe", "aiosmtplib", "uvicorn.access")

_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}"), "<token>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<redacted>"),
    (re.compile(r"([?&;](?:code|claim_code|session_id|token)=)[^&#\s\"'<>]+"), r"\1<redacted>"),
    (re.compile(r"(\"(?:claim_code|session_id|token)\"\s*:\s*\")[^\"]+"), r"\1<redacted>"),
    (re.compile(r"\b((?:sk|rk)_(?:test|live)_)[A-Za-z0-9]+"), r"\1<redacted>"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9_]+"), r"\1<redacted>"),
    # The OAuth flow's secrets (billing.oauth.secret): request, sign-in link, code, refresh, browser, client.
    (re.compile(r"\b(k(?:ar|sl|ac|rt|bs|cs)_)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"), r"\1<redacted>"),
)


def redact(text: str) -> str:
    """`text` with everything shaped like a secret replaced."""
    text = redact_session_ids(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (and its traceback) with `redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(level: str) -> None:
    """Log at `level` to stderr (in stdio mode stdout is the protocol stream), secrets kept out."""
    root = logging.getLogger()
    if not root.handlers:  # like basicConfig: a host that configured logging (a test runner) keeps its own
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(stderr)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    floor = max(logging.WARNING, logging.getLevelName(level))
    for name in CLAMPED:
        logging.getLogger(name).setLevel(floor)
