"""Turning a user's search text into a safe SQLite FTS5 MATCH expression (pure).

User text never reaches FTS5 syntax: it is cut into words (letters and digits), each word is
double-quoted and given a prefix star, and the words are AND-ed. Quotes, parentheses, ``*``,
``:``, ``NEAR``, ``OR`` and SQL fragments therefore search as plain words or are ignored.

Three things make everyday questions find what the sources call by other spellings: two adjacent
words also match written as one ("flash loan" finds DeFiLlama's "Flashloan"), a word's common
endings are cut ("compromises" finds "Compromised", "bridges" finds "Bridge"), and words that every
incident implies ("attack", "exploit", "hack") are dropped.
"""

from __future__ import annotations

import re

from .errors import IntelInputError

MAX_QUERY_CHARS = 200
MAX_TERMS = 12
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
GENERIC = frozenset({"attack", "attacks", "exploit", "exploits", "exploited", "hack", "hacks", "hacked",
                     "incident", "incidents"})


def query_terms(query: str) -> list[str]:
    """The lower-case search words of ``query`` (camel case is not split: FTS indexes both forms)."""
    return [w.casefold() for w in _WORD.findall(query)]


def match_expression(query: str | None) -> str | None:
    """An FTS5 MATCH expression for ``query``, or None when the query is empty.

    Raises:
        IntelInputError: the query is too long, has too many words, or has no searchable word.
    """
    if query is None:
        return None
    if not isinstance(query, str):
        raise IntelInputError(f"query: expected text, got {type(query).__name__}")
    if not query.strip():
        return None
    if len(query) > MAX_QUERY_CHARS:
        raise IntelInputError(f"query: too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
    terms = query_terms(query)
    if not terms:
        raise IntelInputError(
            f"query: {query!r} has no searchable words (letters or digits); "
            "use an empty query to list the newest incidents"
        )
    if len(terms) > MAX_TERMS:
        raise IntelInputError(f"query: too many words ({len(terms)}; at most {MAX_TERMS})")
    specific = [t for t in dict.fromkeys(terms) if t not in GENERIC] or list(dict.fromkeys(terms))
    return " AND ".join(_clauses(specific))


def stem(word: str) -> str:
    """``word`` without a common English ending, when enough of it is left to search by prefix."""
    for suffix, keep in (("ations", 4), ("ation", 4), ("ions", 4), ("ing", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            return word[: len(word) - len(suffix)]
    return word


def words_match(words: list[str]) -> str | None:
    """An FTS5 MATCH expression requiring every word (generic ones dropped), or None when none is left."""
    specific = [stem(w) for w in dict.fromkeys(words) if w not in GENERIC]
    return " AND ".join(_clauses(specific)) if specific else None


def _clauses(terms: list[str]) -> list[str]:
    """Each word as a quoted prefix term; a pair of words may also match as one compound word."""
    clauses: list[str] = []
    index = 0
    while index < len(terms):
        word = terms[index]
        if index + 1 < len(terms):
            following = terms[index + 1]
            clauses.append(f'(("{word}"* AND "{following}"*) OR "{word}{following}"*)')
            index += 2
        else:
            clauses.append(f'"{word}"*')
            index += 1
    return clauses
