"""get_exploit_details: one incident — its canonical report, the other sources' differences only,
amount caveats, labelled addresses and attack transactions — within the answer budget."""

from __future__ import annotations

from typing import Any

from .answer_details import AddressEntry, DetailsAnswer, IncidentDetail, ReportDifference, TransactionEntry
from .budget import LIST_BUDGET_BYTES, fit, json_size
from .errors import IntelInputError
from .known_entities import known_entity
from .records import Incident
from .shaping import incident_row, require_data
from .store import IntelStore
from .store_reads import StoredIncident
from .table import usd

MAX_ID_CHARS = 200
# Amounts within this ratio are the same figure rounded differently, not a disagreement.
AGREE_WITHIN = 1.05
_DETAIL_EXTRA = ("target_type", "bridge_hack", "language", "loss_text", "poc_url", "references")
_COMPARED = ("date", "protocol", "chains", "classification", "technique", "amount_usd", "returned_usd",
             "source_url")


async def exploit_details(store: IntelStore, exploit_id: str) -> DetailsAnswer:
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
    stamp = await store.stamp()
    found = await store.get_incident(exploit_id)
    if found is None:
        similar = await store.similar_ids(exploit_id.rsplit(":", 1)[-1])
        hint = f"; similar ids: {', '.join(similar)}" if similar else "; find ids with search_crypto_exploits"
        raise IntelInputError(f"exploit_id: no incident {exploit_id!r}{hint}")
    members = await store.group_members(found.group_id)
    canonical = next((m for m in members if m.is_canonical), found)
    others = [m.incident for m in members if m is not canonical]
    addresses = _addresses(await store.addresses_of([m.incident.id for m in members]))
    transactions = _transactions(members)
    shown_addresses = addresses[: fit(addresses, lambda a: json_size(a.wire()) * 2, LIST_BUDGET_BYTES // 2)]
    shown_txs = transactions[: fit(transactions, lambda t: json_size(t.wire()) * 2, LIST_BUDGET_BYTES // 4)]
    return DetailsAnswer(
        incident=_detail(canonical),
        requested_id=exploit_id if exploit_id != canonical.incident.id else None,
        amount_caveats=_caveats(canonical, others),
        other_reports=[_difference(canonical.incident, other) for other in others],
        addresses=shown_addresses,
        addresses_total=len(addresses),
        transactions=shown_txs,
        transactions_total=len(transactions),
        counting="this incident counts once in totals, with the canonical report's amount (DeFiLlama when it has one)",
        data_as_of=stamp.data_as_of,
    )


def _detail(canonical: StoredIncident) -> IncidentDetail:
    extra = canonical.incident.extra
    return IncidentDetail.model_validate({**incident_row(canonical), **{k: extra[k] for k in _DETAIL_EXTRA
                                                                         if extra.get(k) is not None}})


def _value(incident: Incident, name: str) -> Any:
    return list(incident.chains) if name == "chains" else getattr(incident, name)


def _difference(canonical: Incident, other: Incident) -> ReportDifference:
    """``other`` as the fields where it says something the canonical report does not."""
    changed: dict[str, Any] = {}
    for name in _COMPARED:
        mine, theirs = _value(canonical, name), _value(other, name)
        if theirs not in (None, [], "") and theirs != mine:
            changed[name] = theirs
    if other.extra.get("loss_text") and other.extra.get("loss_text") != canonical.extra.get("loss_text"):
        changed["loss_text"] = other.extra["loss_text"]
    if other.extra.get("poc_url") and not canonical.extra.get("poc_url"):
        changed["poc_url"] = other.extra["poc_url"]
    return ReportDifference(id=other.id, source=other.source, **changed)


def _caveats(canonical: StoredIncident, others: list[Incident]) -> list[str]:
    lead = canonical.incident
    caveats = []
    lost = lead.amount_usd if lead.amount_usd is not None else canonical.group_amount_usd
    stated = {i.source: i.amount_usd for i in [lead, *others] if i.amount_usd}
    if len(stated) > 1 and max(stated.values()) > AGREE_WITHIN * min(stated.values()):
        figures = ", ".join(f"{source} {usd(amount)}" for source, amount in stated.items())
        caveats.append(f"The sources disagree on the loss ({figures}); totals count {usd(lost)} "
                       f"({lead.source}'s figure).")
    for report in [lead, *others]:
        if report.returned_usd is not None and report.amount_usd and report.returned_usd > report.amount_usd:
            caveats.append(f"{report.source} reports more returned ({usd(report.returned_usd)}) than lost "
                           f"({usd(report.amount_usd)}): the two figures are not comparable as given (they may be "
                           "valued at different times), so read no net loss from them.")
    if lead.amount_usd is None and lost is not None:
        caveats.append(f"The canonical report states no USD loss; {usd(lost)} is another source's figure.")
    return caveats


def _addresses(links: list[Any]) -> list[AddressEntry]:
    merged: dict[str, dict[str, Any]] = {}
    for link in links:
        entry = merged.setdefault(link.address, {"address": link.address, "chain": link.chain or None,
                                                 "roles": [], "reported_by": [], "labels": []})
        for key, value in (("roles", link.role), ("reported_by", link.source), ("labels", link.label)):
            if value and value not in entry[key] and value != "transactions[].attacker":
                entry[key].append(value)
    order = {"attacker": 0, "attack_contract": 1, "victim_contract": 2}
    entries = [AddressEntry(**e, known_entity=known_entity(e["address"], e["chain"])) for e in merged.values()]
    return sorted(entries, key=lambda e: (min(order.get(r, 3) for r in e.roles), e.address))


def _transactions(members: list[StoredIncident]) -> list[TransactionEntry]:
    found: dict[str, dict[str, Any]] = {}
    for m in members:
        listed = [(tx.get("hash"), tx.get("chain")) for tx in m.incident.extra.get("txs") or []]
        listed += [(h, None) for h in m.incident.extra.get("tx_hashes") or []]
        for tx_hash, chain in listed:
            if not tx_hash:
                continue
            entry = found.setdefault(tx_hash, {"hash": tx_hash, "chain": chain, "reported_by": []})
            entry["chain"] = entry["chain"] or chain
            if m.incident.source not in entry["reported_by"]:
                entry["reported_by"].append(m.incident.source)
    return [TransactionEntry(**t) for t in found.values()]
