"""Protocol-name normalisation and forgiving matching (pure).

Sources spell the same protocol differently (``Euler V1``, ``Euler Finance``, ``EulerFinance``);
``name_key`` folds them to one key by splitting camel case, dropping punctuation, version tags and
generic suffixes (finance, protocol, dao, ...). Matching tries the exact key, then a prefix of at
least four characters, and otherwise offers close names as suggestions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# Generic trailing words that do not identify a protocol; dropped while more than one word remains.
SUFFIXES: frozenset[str] = frozenset(
    {
        "finance",
        "fi",
        "protocol",
        "protocols",
        "dao",
        "network",
        "labs",
        "bridge",
        "exchange",
        "token",
        "money",
        "capital",
        "io",
        "xyz",
        "app",
        "defi",
        "nft",
    }
)
_VERSION = re.compile(r"(?i)\bv\d+(?:\.\d+)*\b")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9a-z]+")
MIN_PREFIX = 4


def slug(name: str) -> str:
    """The id slug used by the normalized data set: lower case, runs of non-alphanumerics → ``-``."""
    return _NON_WORD.sub("-", name.lower()).strip("-")


def name_words(name: str) -> list[str]:
    """Lower-case words of a name, camel case split, version tags removed."""
    text = _VERSION.sub(" ", name)
    text = _CAMEL.sub(" ", text)
    return [w for w in _NON_WORD.split(text.lower()) if w]


def name_key(name: str) -> str:
    """The comparison key of a protocol name (``"Euler Finance"`` and ``"EulerFinance"`` → ``euler``)."""
    words = name_words(name)
    if words and words[0] == "the" and len(words) > 1:
        words = words[1:]
    while len(words) > 1 and words[-1] in SUFFIXES:
        words.pop()
    key = "".join(words)
    return key or _NON_WORD.sub("", name.lower())


def keys_match(a: str, b: str) -> bool:
    """Equal keys, or one a prefix of the other with at least ``MIN_PREFIX`` characters."""
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= MIN_PREFIX and long_.startswith(short)


def match_names(query: str, names: Iterable[str]) -> list[str]:
    """Names matching ``query``: exact keys if any, else prefix matches."""
    qkey = name_key(query)
    candidates = list(dict.fromkeys(names))
    exact = [n for n in candidates if name_key(n) == qkey]
    if exact:
        return exact
    return [n for n in candidates if keys_match(qkey, name_key(n))]


def _loose_key(query: str) -> str:
    # Also drop trailing words that look like a misspelt generic suffix ("Financ", "Protocl").
    words = name_words(query)
    while len(words) > 1 and difflib.get_close_matches(words[-1], SUFFIXES, n=1, cutoff=0.8):
        words.pop()
    return "".join(words)


def suggest_names(query: str, names: Iterable[str], limit: int = 5) -> list[str]:
    """Up to ``limit`` names that look like ``query``, closest first (for a "did you mean" answer)."""
    by_key: dict[str, str] = {}
    for n in sorted(set(names)):
        by_key.setdefault(name_key(n), n)
    probes = {name_key(query), _loose_key(query)} - {""}

    def closeness(key: str) -> float:
        best = max(difflib.SequenceMatcher(None, p, key).ratio() for p in probes)
        return 1.0 if any(len(p) >= 3 and p in key for p in probes) else best

    scored = sorted(((closeness(k), k) for k in by_key), key=lambda sk: (-sk[0], sk[1]))
    return [by_key[k] for score, k in scored[:limit] if score >= 0.6]
