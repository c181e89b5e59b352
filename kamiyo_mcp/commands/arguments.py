"""Argument types of the CLI: a bad value is a usage error (exit 2, one line naming the argument).

argparse calls them while parsing, so a bad `--email` or `--days` is refused before anything is
opened or written.
"""

from __future__ import annotations

import argparse

from billing.authority import MAX_TOKEN_DAYS, normalize_email
from billing.errors import ConfigurationError


def email(value: str) -> str:
    """A trimmed, lower-cased email address."""
    try:
        return normalize_email(value)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _int_between(value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not low <= number <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high} (got {number})")
    return number


def days(value: str) -> int:
    """A token validity in days."""
    return _int_between(value, 1, MAX_TOKEN_DAYS)


def port(value: str) -> int:
    return _int_between(value, 1, 65535)


def limit(value: str) -> int:
    """A positive number of rows."""
    return _int_between(value, 1, 100_000)


def row_id(value: str) -> int:
    """A row id: a positive whole number."""
    return _int_between(value, 1, 2**63 - 1)


def text(value: str) -> str:
    """Non-blank text, trimmed."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()
