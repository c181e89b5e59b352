"""What a search asks the store for, once the caller's arguments and words are understood (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Sort = Literal["relevance", "newest", "largest"]
SORTS: tuple[str, ...] = ("relevance", "newest", "largest")


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A search in the store's terms; ``words`` are the words searched for, ``match`` their FTS5 form."""

    words: tuple[str, ...] = ()
    match: str | None = None
    chain: str | None = None  # DeFiLlama's spelling
    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, inclusive
    min_usd: float | None = None  # loss strictly above
    max_usd: float | None = None  # loss strictly below
    sort: Sort = "newest"
    # Where each filter came from: "argument", or the words of the query text that set it.
    origins: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """A stable text form (kept with a page set)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "words": tuple(data.get("words", ()))})

    def without(self, *names: str) -> SearchSpec:
        """This search with some filters dropped (``"words"`` drops the words and their match)."""
        changes: dict[str, Any] = {n: None for n in names if n != "words"}
        if "words" in names:
            changes.update(words=(), match=None)
        origins = {k: v for k, v in self.origins.items() if k not in names}
        return replace(self, **changes, origins=origins)
