"""get_exploit_details: one incident with every report, address and transaction known for it."""

from __future__ import annotations

from typing import Any

from .errors import IntelInputError
from .shaping import incident_row, require_data
from .store import IntelStore

MAX_ID_CHARS = 200


async def exploit_details(store: IntelStore, exploit_id: str) -> dict[str, Any]:
    """Everything known about the incident that ``exploit_id`` (any of its reports) belongs to.

    Raises:
        IntelInputError: empty or unknown id.
        NoIncidentDataError: nothing is loaded yet.
    """
    if not isinstance(exploit_id, str) or not exploit_id.strip():
        raise IntelInputError("exploit_id: expected an incident id such as 'defillama:2022-03-23:ronin-bridge'")
    exploit_id = exploit_id.strip()
    if len(exploit_id) > MAX_ID_CHARS:
        raise IntelInputError(f"exploit_id: too long ({len(exploit_id)} characters; at most {MAX_ID_CHARS})")
    await require_data(store)
    found = await store.get_incident(exploit_id)
    if found is None:
        similar = await store.similar_ids(exploit_id.rsplit(":", 1)[-1])
        hint = f"; similar ids: {', '.join(similar)}" if similar else "; find ids with search_crypto_exploits"
        raise IntelInputError(f"exploit_id: no incident {exploit_id!r}{hint}")
    members = await store.group_members(found.group_id)
    canonical = next((m for m in members if m.is_canonical), found)
    addresses = await store.addresses_of([m.incident.id for m in members])
    txs: dict[str, dict[str, Any]] = {}
    for m in members:
        for tx in m.incident.extra.get("txs") or []:
            txs.setdefault(tx.get("hash"), {**tx, "source": m.incident.source})
        for tx_hash in m.incident.extra.get("tx_hashes") or []:
            txs.setdefault(tx_hash, {"chain": None, "hash": tx_hash, "source": m.incident.source})
    return {
        "incident": {
            **incident_row(canonical),
            "amount_usd_counted": canonical.group_amount_usd,
            **{k: v for k, v in canonical.incident.extra.items() if k not in ("txs", "tx_hashes")},
        },
        "requested_id": exploit_id,
        "canonical_id": canonical.incident.id,
        "reports": [
            {
                **incident_row(m),
                **{k: v for k, v in m.incident.extra.items() if k not in ("txs", "tx_hashes")},
                "canonical": m.is_canonical,
            }
            for m in members
        ],
        "linked_report_ids": [m.incident.id for m in members if not m.is_canonical],
        "addresses": [
            {
                "address": a.address,
                "chain": a.chain,
                "role": a.role,
                "report_id": a.incident_id,
                "source": a.source,
                "label": a.label,
            }
            for a in addresses
        ],
        "transactions": list(txs.values()),
        "counting": "this incident counts once in totals, with the canonical report's amount "
        "(DeFiLlama when it has one)",
    }
