"""A reference risk assessment: the pre-index algorithm (every name compared with the query, every
group scanned, peers rescored), with only the spelling fix (issue 10, item 14) added. The indexed
tool must answer exactly this.

Differences from the code before the index, on purpose: matched names are widened to their whole
protocol (names with equal keys, and names reported for one incident; found here by a
breadth-first walk rather than the index's union-find), and peers are those same protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from kamiyo_mcp.intel.names import keys_match, name_key, suggest_names
from kamiyo_mcp.intel.protocol_index import GroupSummary
from kamiyo_mcp.intel.risk import RiskScore, ScoredIncident, percentile, recommendations, score_incidents

key = lru_cache(maxsize=None)(name_key)


class Reference:
    def __init__(self, groups: Sequence[GroupSummary]) -> None:
        self.groups = sorted(groups, key=lambda g: g.group_id)
        self.names = sorted({n for g in self.groups for n in g.member_names})
        self.by_key: dict[str, set[str]] = {}
        self.groups_of: dict[str, list[GroupSummary]] = {}
        for g in self.groups:
            for n in g.member_names:
                self.by_key.setdefault(key(n), set()).add(n)
                self.groups_of.setdefault(n, []).append(g)

    def closure(self, names: set[str]) -> set[str]:
        """Every name of the protocols ``names`` belong to."""
        seen, todo = set(names), list(names)
        while todo:
            name = todo.pop()
            for other in self.by_key[key(name)] | {m for g in self.groups_of[name] for m in g.member_names}:
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    def match_names(self, query: str) -> list[str]:
        """``names.match_names``: exact keys if any, else prefix matches."""
        qkey = name_key(query)
        exact = [n for n in self.names if key(n) == qkey]
        return exact or [n for n in self.names if keys_match(qkey, key(n))]

    def peer_scores(self, today: date, window: int) -> list[int]:
        """The score of every protocol, its groups found one protocol at a time."""
        left, scores = list(self.groups), []
        while left:
            names = self.closure(set(left[0].member_names))
            scores.append(_score([g for g in left if names.intersection(g.member_names)], today, window).score)
            left = [g for g in left if not names.intersection(g.member_names)]
        return scores

    def assess(self, peers: list[int], protocol: str, chain: str | None, window: int, detail: str,
               today: date) -> dict[str, Any]:
        """The answer ``protocol_risk.assess_protocol_risk`` must give (``chain`` already canonical)."""
        matched = set(self.match_names(protocol))
        widened = self.closure(matched)
        mine = [g for g in self.groups if widened.intersection(g.member_names)]
        if chain:
            mine = [g for g in mine if chain.casefold() in g.chain_keys]
        mine.sort(key=lambda g: g.date, reverse=True)
        result = _score(mine, today, window)
        answer: dict[str, Any] = {
            "protocol": protocol,
            "chain": chain,
            "risk_score": result.score,
            "risk_level": result.level,
            "time_window_days": window,
            "as_of": today.isoformat(),
            "matched_protocols": sorted({g.protocol for g in mine}),
        }
        if not mine:
            answer["note"] = (
                f"No recorded incident for {protocol!r}" + (f" on {chain}" if chain else "")
                + ". A score of 0 means no known incident, not that the protocol is safe."
            )
            suggestions = suggest_names(protocol, self.names) if not matched else []
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
                    for g in mine[:5]
                ],
            )
        if detail == "full":
            answer.update(
                risk_factors=result.components,
                recommendations=recommendations(result, [t for g in mine for t in g.techniques]),
                peer_comparison={
                    "percentile": percentile(result.score, peers) if mine else None,
                    "protocols_compared": len(peers),
                    "median_peer_score": sorted(peers)[len(peers) // 2] if peers else None,
                    "basis": "protocols with at least one recorded incident, scored with the same window",
                },
                formula="score = 0.30·frequency + 0.30·severity + 0.25·recency + 0.15·repeat (each 0–100)",
            )
        return answer


def _score(groups: Sequence[GroupSummary], today: date, window: int) -> RiskScore:
    return score_incidents(
        [ScoredIncident(date.fromisoformat(g.date), g.amount_usd) for g in groups], today=today, window_days=window
    )
