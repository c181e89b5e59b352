"""The typed answer of search_crypto_exploits (pure)."""

from __future__ import annotations

from pydantic import Field

from .answer_base import DATA_AS_OF, Answer, IncidentRow


class UnderstoodQuery(Answer):
    """How the search was understood: the words searched for and every filter, with where it came from."""

    words: list[str] = Field(default_factory=list, description="Words searched for in protocol names, "
                             "techniques, classifications and chains (all must match, as word prefixes).")
    chain: str | None = Field(default=None, description="Only incidents on this chain.")
    since: str | None = Field(default=None, description="Only incidents on or after this day (YYYY-MM-DD).")
    until: str | None = Field(default=None, description="Only incidents on or before this day (YYYY-MM-DD).")
    min_usd: float | None = Field(default=None, description="Only incidents with a loss above this many USD.")
    max_usd: float | None = Field(default=None, description="Only incidents with a loss below this many USD.")
    sort: str = Field(description="Order of results: relevance, newest or largest.")
    from_text: dict[str, str] = Field(default_factory=dict, description="Filters read from the query text, "
                                      "each with the words that set it (e.g. chain: 'on BSC').")
    text: str = Field(description="The whole understanding in one line, e.g. 'flash loan · chain BSC · "
                      "2023-01-01..2023-12-31 · newest first'.")


class QuerySuggestion(Answer):
    """A nearby search that does find incidents."""

    query: str = Field(description="The query text to send.")
    chain: str | None = Field(default=None, description="The chain argument to send, if any.")
    since: str | None = Field(default=None, description="The since argument to send, if any.")
    until: str | None = Field(default=None, description="The until argument to send, if any.")
    min_usd: float | None = Field(default=None, description="The min_usd argument to send, if any.")
    max_usd: float | None = Field(default=None, description="The max_usd argument to send, if any.")
    matches: int = Field(description="How many incidents it finds.")
    change: str = Field(description="What differs from the search that found nothing, in words.")


class SearchAnswer(Answer):
    """A page of incidents matching a search, one row per real incident."""

    exploits: list[IncidentRow] = Field(description="This page's incidents, in the order of `understood_as.sort`.")
    total_matching: int = Field(description="How many incidents match in all (before any cap or paging).")
    first: int = Field(description="Position (1-based) of this page's first incident among the results.")
    returned: int = Field(description="How many incidents this page holds.")
    pageable: int = Field(description="How many of the matching incidents this plan may page through "
                          "(the tier's result cap per search).")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` (with no other argument) for the "
                                    "next page; absent on the last page.")
    understood_as: UnderstoodQuery = Field(description="How the query and filters were understood.")
    note: str | None = Field(default=None, description="Why fewer results than asked were returned, when they were.")
    empty_reason: str | None = Field(default=None, description="Why nothing matched, when nothing did.")
    suggestion: QuerySuggestion | None = Field(default=None, description="The nearest search that finds incidents, "
                                               "when this one found none.")
    data_as_of: str | None = DATA_AS_OF
