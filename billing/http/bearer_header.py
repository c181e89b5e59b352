"""Reading `Authorization: Bearer <token>` (RFC 6750), for every route that takes a token."""

from __future__ import annotations


def parse_bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value and " " not in value else None
