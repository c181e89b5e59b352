"""search_crypto_exploits: ranked, filtered, paged search over incidents, one row per incident group.

Paging: the first call runs the search and keeps its ordered result ids (at most the tier's cap)
as a page set; ``next_cursor`` names the set and the position. Later pages read those ids, so
results neither shift nor repeat while new data is ingested: an id whose report has since joined
another incident is shown as that incident, once. A page holds ``limit`` rows (default 20) or as
many as fit the answer budget, whichever is fewer.
"""

from __future__ import annotations

import re
from datetime import datetime

from .answer_base import IncidentRow
from .answer_search import SearchAnswer, UnderstoodQuery
from .budget import fit, json_size
from .dates import as_utc, utc_now
from .errors import IntelInputError, NoIncidentDataError
from .render_search import row_line_size
from .search_empty import explain_empty
from .search_spec import SearchSpec
from .search_understand import chain_names, describe, understand
from .shaping import incident_row, positive_int, resolve_chain
from .store import IntelStore

DEFAULT_LIMIT = 20
_CURSOR = re.compile(r"([A-Za-z0-9_-]{16,64})\.(\d{1,7})")
_NEW_SEARCH = "start a new search without cursor"


async def search_exploits(
    store: IntelStore,
    *,
    query: str = "",
    chain: str | None = None,
    since: str | None = None,
    until: str | None = None,
    min_usd: float | None = None,
    max_usd: float | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    tier_cap: int,
    now: datetime | None = None,
) -> SearchAnswer:
    """A page of incidents matching the search, and how to get the next.

    Raises:
        IntelInputError: a bad argument or cursor.
        NoIncidentDataError: nothing is loaded yet.
    """
    if isinstance(tier_cap, bool) or not isinstance(tier_cap, int) or tier_cap < 1:
        raise ValueError(f"tier_cap must be a positive int, got {tier_cap!r}")
    page_size = DEFAULT_LIMIT if limit is None else positive_int(limit, "limit")
    moment = as_utc(now or utc_now())
    stamp = await store.stamp()
    index = await store.protocol_index(stamp)
    if index.empty:
        raise NoIncidentDataError()
    spelled = await resolve_chain(store, chain, stamp=stamp)
    known = await store.known_chains(stamp)

    def spec_of_args() -> SearchSpec:
        return understand(query=query, chain=spelled, since=since, until=until, min_usd=min_usd, max_usd=max_usd,
                          sort=sort, chains=chain_names(known), name_words=index.words, today=moment.date())

    page_id: str | None = None
    if cursor is not None:
        page_id, offset = _parse_cursor(cursor)
        page_set = await store.page_set(page_id, moment)
        if page_set is None:
            raise IntelInputError(f"cursor: this search's pages have expired (they are kept 24 h); {_NEW_SEARCH}")
        spec = SearchSpec.from_json(page_set.query)
        given = (query, chain, since, until, min_usd, max_usd, sort)
        if any(v not in (None, "") for v in given) and _differs(spec_of_args(), spec):
            raise IntelInputError(f"cursor: it continues the search for '{describe(spec)}'; send the cursor alone "
                                  f"(limit may change), or {_NEW_SEARCH}")
        total, ids = page_set.total, list(page_set.ids)
    else:
        spec, offset = spec_of_args(), 0
        total, ids = await store.search_ids(spec, limit=tier_cap)
    pageable = min(len(ids), tier_cap)
    if offset > pageable or (offset == pageable and pageable):
        raise IntelInputError(f"cursor: past the last of the {pageable} results this plan may page through; "
                              f"{_NEW_SEARCH}")
    window = ids[offset : min(pageable, offset + page_size)]
    shown = await _page_rows(store, ids, offset, window, from_page_set=cursor is not None)
    count = max(1, fit(shown, lambda item: json_size(item[1].wire()) + row_line_size(item[1])))
    consumed = offset + (shown[count - 1][0] + 1 if count < len(shown) else len(window))
    shown = shown[:count]
    next_cursor = None
    if consumed < pageable:
        if page_id is None:
            page_id = await store.save_page_set(spec.to_json(), ids[:pageable], total, moment)
        next_cursor = f"{page_id}.{consumed}"
    answer = SearchAnswer(
        exploits=[row for _, row in shown],
        total_matching=total,
        first=offset + 1,
        returned=len(shown),
        pageable=pageable,
        next_cursor=next_cursor,
        understood_as=_understood(spec),
        note=_note(limit, len(shown), len(window), pageable, total, tier_cap),
        data_as_of=stamp.data_as_of,
    )
    if total == 0:
        reason, suggestion = await explain_empty(store, spec, await store.search_vocabulary(stamp))
        answer = answer.model_copy(update={"empty_reason": reason, "suggestion": suggestion})
    return answer


def _parse_cursor(cursor: object) -> tuple[str, int]:
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise IntelInputError(f"cursor: not a cursor from this server (use next_cursor as given); {_NEW_SEARCH}")
    return match.group(1), int(match.group(2))


def _differs(asked: SearchSpec, kept: SearchSpec) -> bool:
    fields = ("words", "chain", "since", "until", "min_usd", "max_usd", "sort")
    return any(getattr(asked, f) != getattr(kept, f) for f in fields)


async def _page_rows(store: IntelStore, ids: list[str], offset: int, window: list[str],
                     *, from_page_set: bool) -> list[tuple[int, IncidentRow]]:
    """``(position in window, row)`` of the window's incidents, each incident once across all pages."""
    if from_page_set:
        groups = await store.current_groups(ids[: offset + len(window)])
        earlier = {groups.get(i, i) for i in ids[:offset]}
        targets: list[tuple[int, str]] = []
        for position, ident in enumerate(window):
            group = groups.get(ident)
            if group is not None and group not in earlier:
                earlier.add(group)
                targets.append((position, group))
    else:
        targets = list(enumerate(window))
    rows = await store.search_rows([g for _, g in targets])
    return [(position, IncidentRow(**incident_row(rows[g]))) for position, g in targets if g in rows]


def _understood(spec: SearchSpec) -> UnderstoodQuery:
    return UnderstoodQuery(words=list(spec.words), chain=spec.chain, since=spec.since, until=spec.until,
                           min_usd=spec.min_usd, max_usd=spec.max_usd, sort=spec.sort, from_text=dict(spec.origins),
                           text=describe(spec))


def _note(limit: int | None, returned: int, asked: int, pageable: int, total: int, cap: int) -> str | None:
    notes = []
    if returned < asked:
        notes.append(f"This page holds {returned} of the {asked} asked for: one answer stays under 100 KB "
                     "(about 25k tokens); the rest follow with next_cursor.")
    if limit is not None and limit > cap:
        notes.append(f"limit {limit} is above this plan's cap of {cap} results per search; capped.")
    if total > pageable == cap:
        notes.append(f"This plan may page through {cap} of the {total} matches; narrow the search (chain, "
                     "since/until, min_usd) or upgrade for more.")
    return " ".join(notes) or None
