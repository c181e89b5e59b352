"""Reading the filters a person types into a search (pure).

"flash loan attacks on BSC in 2023 over $10M" → words ``flash loan``, chain BSC, 2023-01-01 ..
2023-12-31, loss above $10M. Recognised: chains (DeFiLlama's names and common aliases; a chain
that is also a word of protocol names, such as Ronin, only after "on"/"in"), years and year ranges,
month names (with a year, or the latest such month), "since/after/before <date>", "last N
days/weeks/months/years", "this/last year", amounts ("over $10M", "under 500k", "$1B+",
"between $1M and $5M"), and order words ("largest", "latest"). Everything else stays a search word,
except filler words ("on", "in", "the", "show me" …).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

_TOKEN = re.compile(
    r"\d{4}-\d\d-\d\d|(?:19|20)\d\d\s*[-–]\s*(?:19|20)\d\d\b"
    r"|\$?\d[\d,]*(?:\.\d+)?\s*(?:k|m|mm|b|bn|million|billion|thousand)?\b\+?|[^\W_]+|[<>]=?",
    re.IGNORECASE | re.UNICODE,
)
_AMOUNT = re.compile(r"(\$)?(\d[\d,]*(?:\.\d+)?)\s*(k|m|mm|b|bn|million|billion|thousand)?(\+)?$", re.IGNORECASE)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS.pop("may", None)  # "may" is too often a verb; "May 2023" is still read (see _month)
_OVER = ("over", "above", "more than", "greater than", "exceeding", "at least", "larger than", "bigger than", ">",
         ">=")
_UNDER = ("under", "below", "less than", "smaller than", "at most", "<", "<=")
_FILLER = frozenset("""a an and any all are at be been by did during do does for from had happened has have how
in into involving is list me many much of on or show that the there to via was were what when where which who
with find get give tell ever alltime""".split())
_LARGEST = frozenset({"largest", "biggest", "worst", "costliest", "top", "major"})
_NEWEST = frozenset({"latest", "newest", "recent", "recently", "last"})
_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}


@dataclass
class ParsedText:
    """What the text says: search words, filters, and the words behind each filter."""

    words: list[str] = field(default_factory=list)
    chain: str | None = None
    since: date | None = None
    until: date | None = None
    min_usd: float | None = None
    max_usd: float | None = None
    sort: str | None = None
    origins: dict[str, str] = field(default_factory=dict)


def _amount(token: str) -> float | None:
    match = _AMOUNT.match(token.replace(" ", ""))
    if not match or not (match.group(1) or match.group(3) or match.group(4)):
        return None  # a bare number is a year or a word, not an amount
    value = float(match.group(2).replace(",", ""))
    return value * _SCALE.get((match.group(3) or "").lower(), 1.0)


def _year(token: str) -> int | None:
    return int(token) if re.fullmatch(r"(19|20)\d\d", token) else None


class _Reader:
    def __init__(self, text: str, chains: dict[str, str], name_words: frozenset[str], today: date) -> None:
        self.tokens = [t.strip() for t in _TOKEN.findall(text)]
        self.lower = [t.lower() for t in self.tokens]
        self.chains = chains
        self.name_words = name_words
        self.today = today
        self.used = [False] * len(self.tokens)
        self.out = ParsedText()

    def phrase(self, start: int, options: tuple[str, ...]) -> int:
        """Tokens taken by the longest option spelled at ``start`` (0 when none)."""
        for option in sorted(options, key=len, reverse=True):
            words = option.split()
            if self.lower[start : start + len(words)] == words:
                return len(words)
        return 0

    def take(self, start: int, count: int, name: str) -> None:
        for i in range(start, start + count):
            self.used[i] = True
        self.out.origins[name] = " ".join(self.tokens[start : start + count])

    def run(self) -> ParsedText:
        i = 0
        while i < len(self.tokens):
            if not self.used[i]:
                i += self.step(i) or 1
            else:
                i += 1
        self.out.words = [t for t, used in zip(self.lower, self.used, strict=True)
                          if not used and t not in _FILLER and not re.fullmatch(r"[<>]=?|[\d,.]+", t)]
        return self.out

    def step(self, i: int) -> int:
        for reader in (self.amount, self.dates, self.chain, self.order):
            taken = reader(i)
            if taken:
                return taken
        return 0

    def amount(self, i: int) -> int:
        lead = self.phrase(i, ("between",))
        if lead and i + 3 < len(self.tokens) and self.lower[i + 2] == "and":
            low, high = _amount(self.tokens[i + 1]), _amount(self.tokens[i + 3])
            if low is not None and high is not None:
                self.out.min_usd, self.out.max_usd = min(low, high), max(low, high)
                self.take(i, 4, "amount")
                return 4
        for options, attr in ((_OVER, "min_usd"), (_UNDER, "max_usd")):
            lead = self.phrase(i, options)
            if lead and i + lead < len(self.tokens):
                value = _amount(self.tokens[i + lead])
                if value is not None:
                    setattr(self.out, attr, value)
                    self.take(i, lead + 1, "amount")
                    return lead + 1
        value = _amount(self.tokens[i])
        if value is not None:  # "$100M hacks", "10M+": a loss of at least that much
            self.out.min_usd = value
            self.take(i, 1, "amount")
            return 1
        return 0

    def dates(self, i: int) -> int:
        word = self.lower[i]
        nxt = self.lower[i + 1] if i + 1 < len(self.tokens) else ""
        if word in ("since", "after", "before") and nxt:
            span = self.span(i + 1)
            if span:
                first, last, used = span
                if word == "since":
                    self.out.since = first
                elif word == "after":
                    self.out.since = last + timedelta(days=1)
                else:
                    self.out.until = first - timedelta(days=1)
                self.take(i, used + 1, "dates")
                return used + 1
        if word == "between" and i + 3 < len(self.tokens) and self.lower[i + 2] == "and":
            low, high = self.span(i + 1), self.span(i + 3)
            if low and high and low[2] == high[2] == 1:
                self.out.since, self.out.until = low[0], high[1]
                self.take(i, 4, "dates")
                return 4
        if word in ("last", "past") and nxt.isdigit() and i + 2 < len(self.tokens) and self.lower[i + 2] in _UNITS:
            self.out.since = self.today - timedelta(days=int(nxt) * _UNITS[self.lower[i + 2]])
            self.take(i, 3, "dates")
            return 3
        if word in ("last", "past", "this") and nxt in ("year", "month", "week"):
            days = {"year": 365, "month": 30, "week": 7}[nxt]
            if word == "this" and nxt == "year":
                self.out.since = date(self.today.year, 1, 1)
            else:
                self.out.since = self.today - timedelta(days=days)
            self.take(i, 2, "dates")
            return 2
        span = self.span(i)
        if span:
            first, last, used = span
            if used == 1 and i + 2 < len(self.tokens) and self.lower[i + 1] in ("to", "until", "through"):
                end = self.span(i + 2)
                if end:
                    self.out.since, self.out.until = first, end[1]
                    self.take(i, 2 + end[2], "dates")
                    return 2 + end[2]
            self.out.since, self.out.until = first, last
            self.take(i, used, "dates")
            return used
        return 0

    def span(self, i: int) -> tuple[date, date, int] | None:
        """``(first day, last day, tokens used)`` of a year, a month (and year) or a YYYY-MM-DD date at ``i``."""
        token = self.lower[i]
        year = _year(token)
        if year:
            return date(year, 1, 1), date(year, 12, 31), 1
        years = re.fullmatch(r"((?:19|20)\d\d)\s*[-–]\s*((?:19|20)\d\d)", token)
        if years:
            low, high = sorted((int(years.group(1)), int(years.group(2))))
            return date(low, 1, 1), date(high, 12, 31), 1
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", token):
            try:
                day = date.fromisoformat(token)
            except ValueError:
                return None
            return day, day, 1
        month = _MONTHS.get(token) or (5 if token == "may" else None)
        if month:
            following = _year(self.lower[i + 1]) if i + 1 < len(self.tokens) else None
            if following is None and token == "may" and (i == 0 or self.lower[i - 1] != "in"):
                return None
            year = following or (self.today.year if month <= self.today.month else self.today.year - 1)
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1), date(year, month, last), 2 if following else 1
        return None

    def chain(self, i: int) -> int:
        lead = 1 if self.lower[i] in ("on", "in") else 0
        for size in (3, 2, 1):
            words = self.lower[i + lead : i + lead + size]
            if len(words) < size:
                continue
            spelled = self.chains.get(" ".join(words))
            if spelled and (lead or size > 1 or words[0] not in self.name_words):
                self.out.chain = spelled
                self.take(i, lead + size, "chain")
                return lead + size
        return 0

    def order(self, i: int) -> int:
        word = self.lower[i]
        if word in _LARGEST or word in _NEWEST:
            self.out.sort = "largest" if word in _LARGEST else "newest"
            self.take(i, 1, "sort")
            return 1
        return 0


def read_query(text: str, chains: dict[str, str], name_words: frozenset[str], today: date) -> ParsedText:
    """The words and filters of ``text``; ``chains`` maps lower-case names and aliases to spellings."""
    return _Reader(text, chains, name_words, today).run()
