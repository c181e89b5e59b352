"""When a search finds nothing: why, and the nearest search that finds something.

Why: a word no incident contains, or parts that each match alone but not together (with counts).
The nearest search is the first that finds incidents among, in order: the misspelt words replaced
by the closest words the index knows, a wider window (no dates), fewer words (one dropped, the
unmatched ones first), no amount filter, no chain filter.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace

from .answer_search import QuerySuggestion
from .fts import words_match
from .search_spec import SearchSpec
from .store import IntelStore


async def _count(store: IntelStore, spec: SearchSpec) -> int:
    total, _ = await store.search_ids(spec, limit=1)
    return total


def _with_words(spec: SearchSpec, words: Sequence[str]) -> SearchSpec:
    return replace(spec, words=tuple(words), match=words_match(list(words)))


async def explain_empty(
    store: IntelStore, spec: SearchSpec, vocabulary: Sequence[str]
) -> tuple[str, QuerySuggestion | None]:
    """``(why nothing matched, the nearest search that matches or None)``."""
    bare = SearchSpec(sort=spec.sort)
    alone = {w: await _count(store, _with_words(bare, [w])) for w in spec.words}
    unknown = [w for w, n in alone.items() if n == 0]
    if unknown:
        reason = ("No incident's protocol, technique, classification or chain contains "
                  + ", ".join(repr(w) for w in unknown) + ".")
    else:
        parts = []
        if spec.words:
            parts.append(f"{' '.join(spec.words)!r}: {await _count(store, _with_words(bare, spec.words))}")
        if spec.chain:
            parts.append(f"chain {spec.chain}: {await _count(store, replace(bare, chain=spec.chain))}")
        if spec.since or spec.until:
            dated = replace(bare, since=spec.since, until=spec.until)
            parts.append(f"{spec.since or '…'}..{spec.until or 'today'}: {await _count(store, dated)}")
        if spec.min_usd is not None or spec.max_usd is not None:
            sized = replace(bare, min_usd=spec.min_usd, max_usd=spec.max_usd)
            parts.append(f"the amount filter: {await _count(store, sized)}")
        reason = ("Each part matches on its own (" + "; ".join(parts) + "), but no incident matches all of them."
                  if len(parts) > 1 else "No incident matches.")
    for change, candidate in _relaxations(spec, unknown, vocabulary):
        found = await _count(store, candidate)
        if found:
            return reason, _suggestion(candidate, found, change)
    return reason, None


def _relaxations(spec: SearchSpec, unknown: list[str], vocabulary: Sequence[str]) -> list[tuple[str, SearchSpec]]:
    out: list[tuple[str, SearchSpec]] = []
    respelled = {w: respell(w, vocabulary) for w in unknown}
    if any(respelled.values()):
        words = [respelled[w][0] if respelled.get(w) else w for w in spec.words]
        changes = ", ".join(f"{w!r} → {respelled[w][0]!r}" for w in unknown if respelled[w])
        out.append((f"another spelling: {changes}", _with_words(spec, words)))
    if spec.since or spec.until:
        out.append(("a wider window: no date limits", spec.without("since", "until")))
    for word in sorted(spec.words, key=lambda w: w not in unknown):
        if len(spec.words) > 1:
            out.append((f"fewer words: without {word!r}", _with_words(spec, [w for w in spec.words if w != word])))
    if spec.min_usd is not None or spec.max_usd is not None:
        out.append(("no amount filter", spec.without("min_usd", "max_usd")))
    if spec.chain:
        out.append((f"any chain, not only {spec.chain}", spec.without("chain")))
    if spec.words and (spec.chain or spec.since or spec.until or spec.min_usd is not None):
        out.append(("the words alone, no filters", SearchSpec(words=spec.words, match=spec.match, sort=spec.sort)))
    return out


def respell(word: str, vocabulary: Sequence[str]) -> list[str]:
    """The closest word of the index (as ``difflib.get_close_matches`` rates it), among words of about the
    same length that share its first or second letter: misspellings rarely change both."""
    slack = max(2, len(word) // 3)
    near = [t for t in vocabulary
            if abs(len(t) - len(word)) <= slack and t[:1] in (word[:1], word[1:2]) and not t.isdigit()]
    return difflib.get_close_matches(word, near, n=1, cutoff=0.75)


def _suggestion(spec: SearchSpec, found: int, change: str) -> QuerySuggestion:
    return QuerySuggestion(query=" ".join(spec.words), chain=spec.chain, since=spec.since, until=spec.until,
                           min_usd=spec.min_usd, max_usd=spec.max_usd, matches=found, change=change)
