"""Parsing of user-supplied dates and of source timestamps (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from .errors import IntelInputError


def parse_since(value: str | None, *, field: str = "since") -> date | None:
    """The UTC day of an ISO date or datetime; None when ``value`` is None or blank.

    Incidents are dated by UTC day, so a datetime is reduced to its UTC date and the filter is
    inclusive of that day.

    Raises:
        IntelInputError: ``value`` is not an ISO date (YYYY-MM-DD) or datetime.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise IntelInputError(f"{field}: expected an ISO date string (YYYY-MM-DD), got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    problem = f"{field}: {value!r} is not an ISO date (YYYY-MM-DD) or datetime"
    if len(text) > 40:
        raise IntelInputError(problem)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise IntelInputError(problem) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.date()


def utc_day_from_unix(seconds: float) -> str:
    """``YYYY-MM-DD`` of a unix timestamp in seconds, in UTC."""
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the one place the clock is read)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC to the second, with a ``Z``: '2026-12-01T09:30:00Z'."""
    return as_utc(moment).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
