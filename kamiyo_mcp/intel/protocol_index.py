"""The protocol index: who is one protocol, and its peers' scores, built once per data version (pure).

A protocol is a set of names: names with the same ``names.name_key`` are one protocol, and so are
names that reports of one incident group use (DeFiLlama's "Curve DEX", DeFiHackLabs' "Curve",
BlockSec's "Curve Finance"). A query matches names as ``names.match_names`` does (equal keys, else
a prefix of at least four characters) and then takes every incident of the protocols those names
belong to, so every spelling of one protocol gives one score, and every incident of a listed
name is counted.

Everything that does not depend on the caller's window is computed when the index is built (at
ingest or refresh, or when another process changed the data); peer scores are computed once per
(day, window) and kept, so a call costs the protocol's own incidents, not the whole data set.
"""

from __future__ import annotations

import bisect
import difflib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .names import MIN_PREFIX, SUFFIXES, name_key, name_words
from .risk import (
    combined_score,
    frequency_component,
    recency_component,
    repeat_component,
    severity_component,
)

PEER_CACHE = 64
SUGGESTION_CACHE = 1024
SUGGESTIONS = 5
SUGGESTION_FLOOR = 0.6


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """One incident group as risk scoring sees it: the canonical report plus its members' names."""

    group_id: str
    date: str
    protocol: str
    amount_usd: float | None
    chain_keys: frozenset[str]
    member_names: tuple[str, ...]
    techniques: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """The incident groups a protocol query counts, newest first, and whether any name matched."""

    groups: tuple[GroupSummary, ...]
    names_matched: bool


@dataclass(frozen=True, slots=True)
class PeerScores:
    """The scores of every protocol with an incident, ascending (for percentiles and the median)."""

    ascending: tuple[int, ...]

    def percentile(self, score: int) -> float:
        """The share (0–100) of peers at or below ``score``, one decimal (``risk.percentile``)."""
        if not self.ascending:
            return 0.0
        return round(100.0 * bisect.bisect_right(self.ascending, score) / len(self.ascending), 1)

    @property
    def median(self) -> int | None:
        return self.ascending[len(self.ascending) // 2] if self.ascending else None


class ProtocolIndex:
    """Name keys, protocol clusters and per-protocol incidents of one data version."""

    def __init__(self, groups: Sequence[GroupSummary], *, today: date | None = None,
                 windows: Sequence[int] = ()) -> None:
        groups = sorted(groups, key=lambda g: g.group_id)
        names = sorted({n for g in groups for n in g.member_names})
        self._key_of = {n: name_key(n) for n in names}
        self._names_by_key: dict[str, list[str]] = {}
        for n in names:
            self._names_by_key.setdefault(self._key_of[n], []).append(n)
        self._keys = sorted(self._names_by_key)
        cluster_of = _clusters(groups, self._key_of)
        self._cluster_of_key = {self._key_of[n]: cluster_of[n] for n in names}
        by_cluster: dict[int, list[GroupSummary]] = {}
        for g in groups:
            by_cluster.setdefault(cluster_of[g.member_names[0]], []).append(g)
        self._groups_by_cluster = {c: sorted(gs, key=lambda g: g.date, reverse=True) for c, gs in by_cluster.items()}
        self._incidents = [
            [(date.fromisoformat(g.date).toordinal(), g.amount_usd or 0.0) for g in gs] for gs in by_cluster.values()
        ]
        self._basis: tuple[date, list[_PeerBasis]] | None = None
        self._peers: OrderedDict[tuple[date, int], PeerScores] = OrderedDict()
        self._suggestions: OrderedDict[str, list[str]] = OrderedDict()
        # The first name of each key (sorted), with a matcher whose second sequence is that key.
        self._matchers = {
            k: difflib.SequenceMatcher(None, "", k) for k in sorted({self._key_of[n] for n in names})
        }
        self._first_name = {k: ns[0] for k, ns in self._names_by_key.items()}
        self.words = frozenset(w for n in names for w in name_words(n))
        self.empty = not groups
        if today is not None:
            for window in windows:
                self.peer_scores(today, window)

    def match(self, query: str) -> Match:
        """Every incident group of the protocols whose names match ``query``, newest first."""
        keys = self._matching_keys(name_key(query))
        clusters = sorted({self._cluster_of_key[k] for k in keys})
        found = [g for c in clusters for g in self._groups_by_cluster[c]]
        if len(clusters) > 1:  # newest first, ties by group id (as within one cluster)
            found.sort(key=lambda g: g.group_id)
            found.sort(key=lambda g: g.date, reverse=True)
        return Match(tuple(found), bool(keys))

    def _matching_keys(self, qkey: str) -> list[str]:
        if not qkey:
            return []
        if qkey in self._names_by_key:
            return [qkey]
        keys: list[str] = []
        if len(qkey) >= MIN_PREFIX:
            start = bisect.bisect_right(self._keys, qkey)
            for key in self._keys[start:]:
                if not key.startswith(qkey):
                    break
                keys.append(key)
        keys.extend(qkey[:n] for n in range(MIN_PREFIX, len(qkey)) if qkey[:n] in self._names_by_key)
        return keys

    def peer_scores(self, today: date, window: int) -> PeerScores:
        """Every protocol's score for ``today`` and ``window``, computed once per pair and kept."""
        key = (today, window)
        cached = self._peers.get(key)
        if cached is None:
            scores = sorted(b.score(window) for b in self._peer_basis(today))
            cached = self._peers[key] = PeerScores(tuple(scores))
            while len(self._peers) > PEER_CACHE:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(key)
        return cached

    def _peer_basis(self, today: date) -> list[_PeerBasis]:
        if self._basis is None or self._basis[0] != today:
            day = today.toordinal()
            basis = []
            for incidents in self._incidents:
                past = [(day - d, amount) for d, amount in incidents if d <= day]
                basis.append(_PeerBasis(
                    tuple(sorted(age for age, _ in past)),
                    round(severity_component(sum(amount for _, amount in past)), 1),
                    round(repeat_component(len(past)), 1),
                ))
            self._basis = (today, basis)
        return self._basis[1]

    def suggest(self, query: str) -> list[str]:
        """Up to five names that look like ``query``, closest first (``names.suggest_names``' answer)."""
        probes = sorted({name_key(query), _loose_key(query)} - {""})
        cache_key = "\0".join(probes)
        cached = self._suggestions.get(cache_key)
        if cached is None:
            cached = self._suggestions[cache_key] = self._closest(probes)
            while len(self._suggestions) > SUGGESTION_CACHE:
                self._suggestions.popitem(last=False)
        return list(cached)

    def _closest(self, probes: list[str]) -> list[str]:
        if not probes:
            return []
        scored: list[tuple[float, str]] = []
        for key, matcher in self._matchers.items():
            if any(len(p) >= 3 and p in key for p in probes):
                scored.append((1.0, key))
                continue
            best = 0.0
            for p in probes:
                matcher.set_seq1(p)
                # quick_ratio bounds ratio from above: skip the exact ratio when it cannot matter.
                if matcher.quick_ratio() >= SUGGESTION_FLOOR:
                    best = max(best, matcher.ratio())
            if best >= SUGGESTION_FLOOR:
                scored.append((best, key))
        scored.sort(key=lambda sk: (-sk[0], sk[1]))
        return [self._first_name[k] for _, k in scored[:SUGGESTIONS]]


@dataclass(frozen=True, slots=True)
class _PeerBasis:
    """What a protocol's score needs besides the window (``risk.score_incidents``, split by window)."""

    ages: tuple[int, ...]  # days since each incident up to today, ascending
    severity: float
    repeat: float

    def score(self, window: int) -> int:
        if not self.ages:
            return combined_score(round(frequency_component(0), 1), self.severity, 0.0, self.repeat)
        in_window = bisect.bisect_right(self.ages, window)
        recency = round(recency_component(self.ages[0], window), 1)
        return combined_score(round(frequency_component(in_window), 1), self.severity, recency, self.repeat)


def _loose_key(query: str) -> str:
    # Also drop trailing words that look like a misspelt generic suffix ("Financ", "Protocl").
    words = name_words(query)
    while len(words) > 1 and difflib.get_close_matches(words[-1], SUFFIXES, n=1, cutoff=0.8):
        words.pop()
    return "".join(words)


def _clusters(groups: Sequence[GroupSummary], key_of: dict[str, str]) -> dict[str, int]:
    """A cluster number per name: equal keys, and names reported for one incident, are one protocol."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for g in groups:
        first = "k:" + key_of[g.member_names[0]]
        for n in g.member_names:
            union(first, "k:" + key_of[n])
    roots = sorted({find("k:" + k) for k in key_of.values()})
    number = {r: i for i, r in enumerate(roots)}
    return {n: number[find("k:" + k)] for n, k in key_of.items()}
