"""The normalized records every source parser produces, and how a re-report merges (pure).

An ``Incident`` is one incident *as one source reports it*; its id follows the shared data set
(``defillama:<date>:<slug>``, ``blocksec:<id>``, ``defihacklabs:<date>:<slug>``) so the raw files
and the normalized ``exploits.jsonl`` describe the same rows. ``merge_incident`` lets a source
only add what it knows: a value the incoming report lacks (None, empty) never erases a stored one,
so loading the raw DeFiHackLabs README after ``exploits.jsonl`` keeps the PoC addresses; and a
value the report marks as ``inferred`` (the README's chain, guessed from explorer links) never
replaces a stored one (the normalized view's chain, read from the PoC's fork network).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

SOURCES: tuple[str, ...] = ("defillama", "blocksec", "defihacklabs")
# Preference for the canonical report of an incident group: DeFiLlama is the incident ledger.
SOURCE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SOURCES)}
ROLES: tuple[str, ...] = ("attacker", "attack_contract", "victim_contract")


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident as reported by one source."""

    id: str
    source: str
    date: str
    protocol: str
    chains: tuple[str, ...] = ()
    classification: str | None = None
    technique: str | None = None
    amount_usd: float | None = None
    returned_usd: float | None = None
    source_url: str | None = None
    related_ids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # Fields this report only guessed (not stored): they fill gaps but never replace a stored value.
    inferred: frozenset[str] = frozenset()

    def content(self) -> dict[str, Any]:
        """Everything but the links, JSON-ready (what ``content_hash`` covers)."""
        return {
            "id": self.id,
            "source": self.source,
            "date": self.date,
            "protocol": self.protocol,
            "chains": list(self.chains),
            "classification": self.classification,
            "technique": self.technique,
            "amount_usd": self.amount_usd,
            "returned_usd": self.returned_usd,
            "source_url": self.source_url,
            **{k: self.extra[k] for k in sorted(self.extra)},
        }

    def content_hash(self) -> str:
        """A stable digest of ``content()``, to tell an unchanged re-report from an update."""
        blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AddressLink:
    """An address a source ties to an incident in one role."""

    address: str
    chain: str
    role: str
    incident_id: str
    source: str
    label: str | None = None


def _empty(value: object) -> bool:
    return value is None or value == "" or value == [] or value == () or value == {}


def merge_incident(stored: Incident, incoming: Incident) -> Incident:
    """``incoming`` laid over ``stored``: known incoming values win, missing ones keep the stored."""
    core = {}
    for name in (
        "date",
        "protocol",
        "chains",
        "classification",
        "technique",
        "amount_usd",
        "returned_usd",
        "source_url",
    ):
        value = getattr(incoming, name)
        keep = _empty(value) or (name in incoming.inferred and not _empty(getattr(stored, name)))
        core[name] = getattr(stored, name) if keep else value
    extra = dict(stored.extra)
    extra.update(
        {
            k: v
            for k, v in incoming.extra.items()
            if not _empty(v) and not (k in incoming.inferred and not _empty(stored.extra.get(k)))
        }
    )
    related = tuple(dict.fromkeys(stored.related_ids + incoming.related_ids))
    return replace(stored, **core, extra=extra, related_ids=related)
