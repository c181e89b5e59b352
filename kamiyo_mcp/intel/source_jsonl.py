"""Parsers of the normalized ``exploits.jsonl`` and ``addresses.jsonl`` (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .errors import SourceFormatError
from .records import ROLES, SOURCES, AddressLink, Incident

_CORE = {
    "id",
    "source",
    "date",
    "protocol",
    "chains",
    "classification",
    "technique",
    "amount_usd",
    "returned_usd",
    "source_url",
    "related_ids",
}


def jsonl_rows(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | SourceFormatError]]:
    """``(line, object)`` per non-blank line; a line that is not a JSON object yields an error."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, SourceFormatError(f"{name}:{number}", f"invalid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            yield number, SourceFormatError(f"{name}:{number}", "expected a JSON object")
            continue
        yield number, row


def _amount(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key!r} must be a number or null, got {value!r}")
    return float(value)


def _incident(row: dict[str, Any]) -> Incident:
    for key in ("id", "source", "date", "protocol"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ValueError(f"missing or empty field {key!r}")
    if row["source"] not in SOURCES:
        raise ValueError(f"unknown source {row['source']!r}")
    if len(row["date"]) != 10 or row["date"][4] != "-" or row["date"][7] != "-":
        raise ValueError(f"date {row['date']!r} is not YYYY-MM-DD")
    chains = row.get("chains") or []
    related = row.get("related_ids") or []
    if not isinstance(chains, list) or not isinstance(related, list):
        raise ValueError("'chains' and 'related_ids' must be lists")
    return Incident(
        id=row["id"],
        source=row["source"],
        date=row["date"],
        protocol=row["protocol"].strip(),
        chains=tuple(str(c) for c in chains if c),
        classification=row.get("classification"),
        technique=row.get("technique"),
        amount_usd=_amount(row, "amount_usd"),
        returned_usd=_amount(row, "returned_usd"),
        source_url=row.get("source_url"),
        related_ids=tuple(str(r) for r in related),
        extra={k: v for k, v in row.items() if k not in _CORE},
    )


def parse_exploits_jsonl(text: str, name: str) -> Iterator[Incident | SourceFormatError]:
    """Incidents of ``exploits.jsonl``, one per line."""
    for number, row in jsonl_rows(text, name):
        if isinstance(row, SourceFormatError):
            yield row
            continue
        try:
            yield _incident(row)
        except ValueError as exc:
            yield SourceFormatError(f"{name}:{number}", str(exc))


def parse_addresses_jsonl(text: str, name: str) -> Iterator[AddressLink | SourceFormatError]:
    """Address links of ``addresses.jsonl``, one per line."""
    for number, row in jsonl_rows(text, name):
        if isinstance(row, SourceFormatError):
            yield row
            continue
        missing = [k for k in ("address", "role", "incident_id") if not isinstance(row.get(k), str) or not row[k]]
        if missing:
            yield SourceFormatError(f"{name}:{number}", f"missing or empty field {missing[0]!r}")
            continue
        if row["role"] not in ROLES:
            yield SourceFormatError(f"{name}:{number}", f"unknown role {row['role']!r}")
            continue
        address = row["address"].strip()
        yield AddressLink(
            address=address.lower() if address.startswith("0x") else address,
            chain=str(row.get("chain") or ""),
            role=row["role"],
            incident_id=row["incident_id"],
            source=str(row.get("source") or ""),
            label=row.get("label"),
        )
