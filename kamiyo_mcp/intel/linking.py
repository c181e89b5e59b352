"""Linking reports of the same incident across sources into incident groups (pure).

Choice (documented for counts and totals):

* Two reports are linked when ``exploits.jsonl`` says so (``related_ids``) or when they pass the
  same heuristic that produced those ids: different sources, protocol name keys equal or one a
  prefix of the other (≥ 4 characters, see ``names.name_key``), dates within ±3 days, and amounts
  within 20× of each other when both are known. Equal name keys may be up to 7 days apart: sources
  date an incident by its discovery or by its first transaction (Ronin: DeFiLlama 2022-03-23,
  DeFiHackLabs 2022-03-29).
* Links are applied closest-date first, and a link is refused when it would put two reports of the
  *same* source in one group: a source never reports one incident twice (the two same-day Mirror
  rows of DeFiLlama are separate upstream entries), so such a chain of links is a false link.
* Each group has one canonical report: DeFiLlama when present, else BlockSec, else DeFiHackLabs.
  Counts and USD totals use canonical reports only, so a real incident is counted once; the
  group's amount is the canonical amount, or the first known amount in that same preference order
  when the canonical report has none (DeFiHackLabs often states losses in tokens).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .names import keys_match
from .records import SOURCE_RANK

MAX_DAYS_APART = 3
MAX_DAYS_APART_SAME_NAME = 7
MAX_AMOUNT_RATIO = 20.0


@dataclass(frozen=True, slots=True)
class LinkRow:
    """What linking needs to know about one report."""

    id: str
    source: str
    date: str
    name_key: str
    amount_usd: float | None
    related_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupAssignment:
    group_id: str
    is_canonical: bool
    group_amount_usd: float | None


def _amounts_compatible(a: float | None, b: float | None) -> bool:
    if not a or not b:
        return True
    high, low = max(a, b), min(a, b)
    return high / low <= MAX_AMOUNT_RATIO


def _days(row: LinkRow) -> int:
    return date.fromisoformat(row.date).toordinal()


def candidate_links(rows: list[LinkRow]) -> list[tuple[int, int, str, str]]:
    """``(days apart, rank, id_a, id_b)`` for every plausible pair; explicit links rank first."""
    by_id = {r.id: r for r in rows}
    links: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        for other_id in row.related_ids:
            other = by_id.get(other_id)
            if other is not None and other.source != row.source:
                pair = (row.id, other.id) if row.id < other.id else (other.id, row.id)
                links[pair] = (abs(_days(row) - _days(other)), 0)
    ordered = sorted(rows, key=_days)
    days = [_days(r) for r in ordered]
    for i, row in enumerate(ordered):
        j = i + 1
        while j < len(ordered) and days[j] - days[i] <= MAX_DAYS_APART_SAME_NAME:
            other = ordered[j]
            j += 1
            if other.source == row.source or not keys_match(row.name_key, other.name_key):
                continue
            if row.name_key != other.name_key and days[j - 1] - days[i] > MAX_DAYS_APART:
                continue
            if not _amounts_compatible(row.amount_usd, other.amount_usd):
                continue
            pair = (row.id, other.id) if row.id < other.id else (other.id, row.id)
            rank = 1 if row.name_key == other.name_key else 2
            links.setdefault(pair, (days[j - 1] - days[i], rank))
    return sorted((d, rank, a, b) for (a, b), (d, rank) in links.items())


def assign_groups(rows: Iterable[LinkRow]) -> dict[str, GroupAssignment]:
    """The incident group of every report, keyed by report id."""
    rows = list(rows)
    parent = {r.id: r.id for r in rows}
    sources = {r.id: {r.source} for r in rows}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _days_apart, _rank, a, b in candidate_links(rows):
        ra, rb = find(a), find(b)
        if ra == rb or sources[ra] & sources[rb]:
            continue
        parent[rb] = ra
        sources[ra] |= sources.pop(rb)

    members: dict[str, list[LinkRow]] = {}
    for r in rows:
        members.setdefault(find(r.id), []).append(r)
    result: dict[str, GroupAssignment] = {}
    for group in members.values():
        group.sort(key=lambda r: (SOURCE_RANK.get(r.source, 99), r.date, r.id))
        canonical = group[0]
        amount = next((r.amount_usd for r in group if r.amount_usd is not None), None)
        for r in group:
            result[r.id] = GroupAssignment(canonical.id, r.id == canonical.id, amount)
    return result
