"""The text content of the risk, wallet and details answers: short lines and tables, not JSON (pure)."""

from __future__ import annotations

from .answer_details import DetailsAnswer
from .answer_risk import RiskAnswer
from .answer_wallet import WalletAnswer
from .render_search import as_of
from .table import clip, plural, table, usd


def render_risk(a: RiskAnswer) -> str:
    where = f" on {a.chain}" if a.chain else ""
    lines = [f"{a.protocol}{where}: risk {a.risk_score}/100 ({a.risk_level}), {a.time_window_days}-day window, "
             f"as of {a.as_of}."]
    if a.matched_protocols:
        lines.append("Counted: every incident of " + ", ".join(a.matched_protocols) + ".")
    if a.note:
        lines.append(a.note)
    if a.suggestions:
        lines.append("Did you mean: " + ", ".join(a.suggestions) + "?")
    if a.exploit_count is not None:
        lines.append(f"{plural(a.exploit_count, 'incident')} ({a.exploits_in_window} in the window), "
                     f"{usd(a.total_loss_usd)} lost in all, last on {a.last_exploit_date or '—'}.")
    if a.recent_exploits:
        lines.append(table(("date", "protocol", "loss", "id"),
                           [[e.date, e.protocol, usd(e.amount_usd), e.id] for e in a.recent_exploits],
                           (10, 26, 7, 60)))
    if a.risk_factors:
        f = a.risk_factors
        lines.append(f"Factors: frequency {f.frequency}, severity {f.severity}, recency {f.recency}, "
                     f"repeat {f.repeat} ({a.formula}).")
    if a.peer_comparison and a.peer_comparison.percentile is not None:
        p = a.peer_comparison
        lines.append(f"Peers: at or above {p.percentile}% of {p.protocols_compared} protocols with incidents "
                     f"(median score {p.median_peer_score}).")
    lines.extend(f"- {tip}" for tip in a.recommendations)
    return "\n".join(lines) + as_of(a.data_as_of)


def render_wallet(a: WalletAnswer) -> str:
    lines = [f"{a.address} on {a.chain}: {a.verdict}"]
    if a.known_entity:
        e = a.known_entity
        lines.append(f"Known as {e.name} ({e.kind}): {e.summary} Sources: "
                     + "; ".join(f"{s.title} <{s.url}>" for s in e.sources) + ".")
    if a.incident_links:
        lines.append(table(("date", "protocol", "role", "incident"),
                           [[link.date or "—", link.protocol or "—", link.role, link.incident_id]
                            for link in a.incident_links], (10, 26, 16, 60)))
        if a.incident_link_count > len(a.incident_links):
            lines.append(f"… and {a.incident_link_count - len(a.incident_links)} more links.")
    if a.onchain and a.onchain.checked:
        hits = a.onchain.exploited_contract_interactions
        total = len(hits) if a.onchain.interactions_total is None else a.onchain.interactions_total
        lines.append(f"On-chain: {plural(a.onchain.transactions_in_lookback or 0, 'transaction')} in the last "
                     f"{a.lookback_days} days, {total} with exploited contracts.")
        lines.extend(f"- {i.time[:10]} {i.direction} {i.counterparty} ({i.counterparty_role} of {i.incident_id})"
                     f"{' [failed]' if i.failed else ''} tx {i.tx_hash}" for i in hits)
    for item in a.not_checked:
        lines.append(f"Not checked: {item}")
    return "\n".join(lines) + as_of(a.data_as_of)


def render_details(a: DetailsAnswer) -> str:
    i = a.incident
    lines = [f"{i.protocol} — {i.date}, {', '.join(i.chains) or 'chain unknown'}: {usd(i.amount_usd)} lost"
             + (f", {usd(i.returned_usd)} returned" if i.returned_usd is not None else "")
             + f". {i.technique or ''} ({i.source}: {i.id})".rstrip()]
    if a.requested_id:
        lines.append(f"{a.requested_id} is another source's report of this incident.")
    facts = [f"{k}: {v}" for k, v in (("class", i.classification), ("target", i.target_type),
                                      ("bridge", i.bridge_hack), ("language", i.language),
                                      ("source", i.source_url), ("PoC", i.poc_url)) if v is not None]
    if facts:
        lines.append("; ".join(facts))
    lines.extend(f"Caveat: {c}" for c in a.amount_caveats)
    for r in a.other_reports:
        said = [f"{k} {_value(v, k)}" for k, v in r.wire().items() if k not in ("id", "source")]
        lines.append(f"{r.source} ({r.id}) differs: " + ("; ".join(clip(s, 90) for s in said) or "nothing") + ".")
    if a.addresses:
        lines.append(table(("role", "address", "chain", "sources", "known as"),
                           [[", ".join(e.roles), e.address, e.chain or "—", ", ".join(e.reported_by),
                             e.known_entity.name + f" ({e.known_entity.kind})" if e.known_entity else ""]
                            for e in a.addresses], (28, 44, 10, 24, 40)))
    if a.addresses_total > len(a.addresses):
        lines.append(f"… and {a.addresses_total - len(a.addresses)} more addresses.")
    if a.transactions:
        shown = a.transactions[:10]
        more = a.transactions_total - len(shown)
        lines.append(f"{plural(a.transactions_total, 'attack transaction')}: " + ", ".join(t.hash for t in shown)
                     + (f" … and {more} more ({len(a.transactions)} listed in the structured answer)" if more else ""))
    return "\n".join(lines) + as_of(a.data_as_of)


def _value(value: object, name: str) -> str:
    if name.endswith("_usd") and isinstance(value, int | float):
        return usd(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
