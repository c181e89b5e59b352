"""search_crypto_exploits: full-text search over incidents, one row per incident group."""

from __future__ import annotations

from typing import Any

from .chains import chain_key
from .dates import parse_since
from .errors import IntelInputError
from .fts import match_expression
from .shaping import incident_row, require_data, resolve_chain
from .store import IntelStore

DEFAULT_LIMIT = 20


async def search_exploits(
    store: IntelStore, *, query: str, chain: str | None, since: str | None, limit: int | None, tier_cap: int
) -> dict[str, Any]:
    """Incidents matching ``query`` (and ``chain`` / ``since``), newest first, at most ``tier_cap``.

    Raises:
        IntelInputError: bad query, chain, since or limit.
        NoIncidentDataError: nothing is loaded yet.
    """
    if isinstance(tier_cap, bool) or not isinstance(tier_cap, int) or tier_cap < 1:
        raise ValueError(f"tier_cap must be a positive int, got {tier_cap!r}")
    match = match_expression(query)
    since_day = parse_since(since)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise IntelInputError(f"limit: expected a positive integer, got {limit!r}")
    if limit is not None and limit < 1:
        raise IntelInputError(f"limit: must be at least 1, got {limit}")
    await require_data(store)
    spelled = await resolve_chain(store, chain)
    requested = DEFAULT_LIMIT if limit is None else limit
    effective = min(requested, tier_cap)
    total, rows = await store.search(
        match=match,
        chain_key=chain_key(spelled) if spelled else None,
        since=since_day.isoformat() if since_day else None,
        limit=effective,
    )
    metadata: dict[str, Any] = {
        "total_matching": total,
        "returned": len(rows),
        "tier_cap": tier_cap,
        "limit_applied": effective,
        "query": {
            "query": query,
            "chain": spelled,
            "since": since_day.isoformat() if since_day else None,
            "limit": limit,
        },
        "grouping": "one row per incident; reports of the same incident from other sources are "
        "linked (see get_exploit_details)",
    }
    if limit is not None and limit > tier_cap:
        metadata["note"] = f"limit {limit} is above this plan's cap of {tier_cap} results per call; capped."
    return {"exploits": [incident_row(r) for r in rows], "metadata": metadata}
