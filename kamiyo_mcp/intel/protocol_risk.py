"""assess_defi_protocol_risk: a protocol's risk score, shaped by the caller's detail level.

Incidents are counted once per incident group (see ``linking``). A query names a protocol in any
spelling: the ``protocol_index`` resolves it to every incident of that protocol ("Curve",
"Curve DEX" and "Curve Finance" are one protocol with one score), so every incident of a name in
``matched_protocols`` is counted. The formula is in ``risk``; names, clusters and peer scores are
computed once per data version, so a call costs only the protocol's own incidents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from .answer_risk import RiskAnswer
from .dates import as_utc, utc_now
from .errors import IntelInputError, NoIncidentDataError
from .names import name_key
from .protocol_index import GroupSummary
from .risk import RiskScore, ScoredIncident, recommendations, score_incidents
from .shaping import positive_int, resolve_chain
from .store import IntelStore

Detail = Literal["basic", "summary", "full"]
MAX_WINDOW_DAYS = 36_500
RECENT_SHOWN = 5


def _score(groups: Sequence[GroupSummary], today: date, window: int) -> RiskScore:
    return score_incidents(
        [ScoredIncident(date.fromisoformat(g.date), g.amount_usd) for g in groups], today=today, window_days=window
    )


async def assess_protocol_risk(
    store: IntelStore,
    *,
    protocol: str,
    chain: str | None,
    time_window_days: int,
    detail: Detail,
    now: datetime | None = None,
) -> RiskAnswer:
    """The 0–100 risk score and level of ``protocol`` (optionally on one chain).

    Raises:
        IntelInputError: empty protocol, bad chain, bad window, unknown detail level.
        NoIncidentDataError: nothing is loaded yet.
    """
    if detail not in ("basic", "summary", "full"):
        raise ValueError(f"detail must be basic, summary or full, got {detail!r}")
    if not isinstance(protocol, str) or not protocol.strip() or not name_key(protocol):
        raise IntelInputError("protocol: expected a protocol name, e.g. 'Euler' or 'Curve Finance'")
    if len(protocol) > 100:
        raise IntelInputError(f"protocol: too long ({len(protocol)} characters; at most 100)")
    window = positive_int(time_window_days, "time_window_days", maximum=MAX_WINDOW_DAYS)
    stamp = await store.stamp()
    index = await store.protocol_index(stamp)
    if index.empty:
        raise NoIncidentDataError()
    spelled = await resolve_chain(store, chain, stamp=stamp)
    today = as_utc(now or utc_now()).date()

    match = index.match(protocol)
    mine = list(match.groups)
    if spelled:
        mine = [g for g in mine if spelled.casefold() in g.chain_keys]
    result = _score(mine, today, window)

    answer: dict[str, Any] = {
        "protocol": protocol,
        "chain": spelled,
        "risk_score": result.score,
        "risk_level": result.level,
        "time_window_days": window,
        "as_of": today.isoformat(),
        "matched_protocols": sorted({g.protocol for g in mine}),
    }
    if not mine:
        answer["note"] = (
            f"No recorded incident for {protocol!r}"
            + (f" on {spelled}" if spelled else "")
            + ". A score of 0 means no known "
            "incident, not that the protocol is safe."
        )
        suggestions = index.suggest(protocol) if not match.names_matched else []
        if suggestions:
            answer["suggestions"] = suggestions
    if detail in ("summary", "full"):
        answer.update(
            exploit_count=result.exploit_count,
            exploits_in_window=result.window_count,
            total_loss_usd=result.total_loss_usd,
            last_exploit_date=result.last_exploit_date.isoformat() if result.last_exploit_date else None,
            recent_exploits=[
                {"id": g.group_id, "date": g.date, "protocol": g.protocol, "amount_usd": g.amount_usd}
                for g in mine[:RECENT_SHOWN]
            ],
        )
    if detail == "full":
        peers = index.peer_scores(today, window)
        answer.update(
            risk_factors=result.components,
            recommendations=recommendations(result, [t for g in mine for t in g.techniques]),
            peer_comparison={
                "percentile": peers.percentile(result.score) if mine else None,
                "protocols_compared": len(peers.ascending),
                "median_peer_score": peers.median,
                "basis": "protocols with at least one recorded incident, scored with the same window",
            },
            formula="score = 0.30·frequency + 0.30·severity + 0.25·recency + 0.15·repeat (each 0–100)",
        )
    return RiskAnswer(**answer, detail=detail, data_as_of=stamp.data_as_of)
