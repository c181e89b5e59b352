"""Argument checks and result shapes shared by the query functions."""

from __future__ import annotations

from typing import Any

from billing.tiers import TIERS

from .chains import canonical_chain, chain_key
from .errors import IntelInputError, NoIncidentDataError
from .store import IntelStore
from .store_base import DataStamp
from .store_reads import StoredIncident

# Per-call result caps come from the one tier table.
TIER_CAPS: dict[str, int] = {name: tier.search_results_per_call for name, tier in TIERS.items()}


async def require_data(store: IntelStore) -> None:
    """Raises NoIncidentDataError when nothing is loaded."""
    if not await store.has_incidents():
        raise NoIncidentDataError()


async def resolve_chain(store: IntelStore, chain: str | None, *, field: str = "chain",
                        stamp: DataStamp | None = None) -> str | None:
    """The canonical spelling of ``chain`` (case-insensitive, aliases accepted), or None.

    Raises:
        IntelInputError: the chain is not known to the data or to the alias table.
    """
    if chain is None:
        return None
    if not isinstance(chain, str):
        raise IntelInputError(f"{field}: expected a chain name, got {type(chain).__name__}")
    if not chain.strip():
        return None
    known = await store.known_chains(stamp)
    spelled = canonical_chain(chain, known)
    if spelled is None or chain_key(spelled) not in known:
        common = ", ".join(sorted(known.values(), key=str.casefold)[:25])
        raise IntelInputError(f"{field}: unknown chain {chain!r}; known chains include: {common}")
    return spelled


def positive_int(value: Any, field: str, *, maximum: int | None = None) -> int:
    """``value`` as a positive int.

    Raises:
        IntelInputError: not an integer, not positive, or above ``maximum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise IntelInputError(f"{field}: expected a positive integer, got {value!r}")
    if value < 1:
        raise IntelInputError(f"{field}: must be at least 1, got {value}")
    if maximum is not None and value > maximum:
        raise IntelInputError(f"{field}: at most {maximum}, got {value}")
    return value


def incident_row(stored: StoredIncident) -> dict[str, Any]:
    """The search-result shape of an incident (its canonical report, with group-level fields)."""
    i = stored.incident
    return {
        "id": i.id,
        "date": i.date,
        "protocol": i.protocol,
        # Every chain a source names for the incident (the canonical report's first): the chain
        # filter matches on these, so a row always shows why it matched.
        "chains": list(dict.fromkeys([*i.chains, *stored.group_chains])),
        "classification": i.classification,
        "technique": i.technique,
        "amount_usd": i.amount_usd if i.amount_usd is not None else stored.group_amount_usd,
        "returned_usd": i.returned_usd,
        "source": i.source,
        "source_url": i.source_url,
    }
