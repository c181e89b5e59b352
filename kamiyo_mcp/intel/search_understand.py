"""From a search's arguments and query text to a ``SearchSpec`` and its echo (pure but for no I/O).

Explicit arguments always win; a filter read from the text applies only when its argument was not
given (the text's words for it are then noted as overridden, not searched for).
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from .chains import ALIASES, chain_key
from .dates import parse_since
from .errors import IntelInputError
from .fts import GENERIC, MAX_QUERY_CHARS, MAX_TERMS, query_terms, words_match
from .query_text import read_query
from .search_spec import SORTS, SearchSpec, Sort
from .table import usd

MAX_USD = 1e13
ORDER_WORDS = {"relevance": "best match first", "newest": "newest first", "largest": "largest loss first"}


def chain_names(known: dict[str, str]) -> dict[str, str]:
    """Lower-case names and aliases of the chains in the data → their spelling."""
    names = dict(known)
    names.update({alias: spelled for alias, spelled in ALIASES.items() if chain_key(spelled) in known})
    return names


def _amount(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_USD:
        raise IntelInputError(f"{field}: expected a USD amount between 0 and {MAX_USD:,.0f}, got {value!r}")
    return float(value)


def understand(
    *,
    query: str,
    chain: str | None,
    since: str | None,
    until: str | None,
    min_usd: float | None,
    max_usd: float | None,
    sort: str | None,
    chains: dict[str, str],
    name_words: frozenset[str],
    today: date,
) -> SearchSpec:
    """The search a caller means (``chain`` already resolved to its spelling).

    Raises:
        IntelInputError: a bad query, date, amount or sort, or since after until.
    """
    if not isinstance(query, str):
        raise IntelInputError(f"query: expected text, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise IntelInputError(f"query: too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
    if query.strip() and not query_terms(query):
        raise IntelInputError(f"query: {query!r} has no searchable words (letters or digits); "
                              "use an empty query to list the newest incidents")
    if sort is not None and sort not in SORTS:
        raise IntelInputError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
    since_day = parse_since(since)
    until_day = parse_since(until, field="until")
    minimum = _amount(min_usd, "min_usd")
    maximum = _amount(max_usd, "max_usd")
    if minimum is not None and maximum is not None and minimum >= maximum:
        raise IntelInputError(f"min_usd {minimum:,.0f} is not below max_usd {maximum:,.0f}")
    text = read_query(query, chains, name_words, today)
    if len(text.words) > MAX_TERMS:
        raise IntelInputError(f"query: too many words ({len(text.words)}; at most {MAX_TERMS})")
    origins: dict[str, str] = {}
    overridden: list[str] = []

    def from_text(name: str, given: bool) -> bool:
        """Whether the text's filter ``name`` applies (it does when its argument was not given)."""
        if name not in text.origins:
            return False
        if given:
            overridden.append(text.origins[name])
            return False
        origins[name] = text.origins[name]
        return True

    if from_text("chain", chain is not None):
        chain = text.chain
    if from_text("dates", since_day is not None or until_day is not None):
        since_day, until_day = text.since, text.until
    if since_day and until_day and since_day > until_day:
        raise IntelInputError(f"since {since_day} is after until {until_day}")
    if from_text("amount", minimum is not None or maximum is not None):
        minimum, maximum = text.min_usd, text.max_usd
    chosen_sort = sort
    if from_text("sort", sort is not None):
        chosen_sort = text.sort
    words = [w for w in text.words if w not in GENERIC]
    match = words_match(words)
    if overridden:
        origins["overridden by arguments"] = "; ".join(overridden)
    return SearchSpec(
        words=tuple(words),
        match=match,
        chain=chain,
        since=since_day.isoformat() if since_day else None,
        until=until_day.isoformat() if until_day else None,
        min_usd=minimum,
        max_usd=maximum,
        sort=cast(Sort, chosen_sort or ("relevance" if match else "newest")),
        origins=origins,
    )


def describe(spec: SearchSpec) -> str:
    """The search in one line: 'flash loan · chain BSC · 2023-01-01..2023-12-31 · loss over $10M · newest first'."""
    parts = [" ".join(w for w in spec.words) or "all incidents"]
    if spec.chain:
        parts.append(f"chain {spec.chain}")
    if spec.since or spec.until:
        parts.append(f"{spec.since or '…'}..{spec.until or 'today'}")
    if spec.min_usd is not None:
        parts.append(f"loss over {usd(spec.min_usd)}")
    if spec.max_usd is not None:
        parts.append(f"loss under {usd(spec.max_usd)}")
    parts.append(ORDER_WORDS[spec.sort])
    return " · ".join(parts)
