"""The text content of a search answer: a short table plus totals, not a second JSON copy (pure)."""

from __future__ import annotations

from .answer_base import IncidentRow
from .answer_search import SearchAnswer
from .table import clip, plural, table, usd

HEADER = ("date", "protocol", "chains", "loss", "technique", "id")
WIDTHS = (10, 26, 18, 7, 38, 60)


def row_cells(row: IncidentRow) -> list[str]:
    return [row.date, row.protocol, ", ".join(row.chains), usd(row.amount_usd), row.technique or "", row.id]


def row_line_size(row: IncidentRow) -> int:
    """Bytes one row adds to the text (its table line)."""
    return len(" | ".join(clip(c, w) for c, w in zip(row_cells(row), WIDTHS, strict=True)).encode()) + 1


def as_of(data_as_of: str | None) -> str:
    return f" Data as of {data_as_of}." if data_as_of else ""


def render_search(answer: SearchAnswer) -> str:
    """'12 incidents match: flash loan · chain BSC · 2023 · best match first. Showing 1–12.' + table + totals."""
    understood = answer.understood_as
    head = f"{plural(answer.total_matching, 'incident')} match: {understood.text}."
    if understood.from_text:
        head += " Read from the query: " + "; ".join(f"{k} ← {v!r}" for k, v in understood.from_text.items()) + "."
    if not answer.exploits:
        lines = [head]
        if answer.empty_reason:
            lines.append(answer.empty_reason)
        if answer.suggestion:
            s = answer.suggestion
            args = ", ".join(f"{k}={v!r}" for k, v in (("chain", s.chain), ("since", s.since), ("until", s.until),
                                                     ("min_usd", s.min_usd), ("max_usd", s.max_usd)) if v is not None)
            lines.append(f"Nearest search that finds incidents ({s.change}): query={s.query!r}"
                         + (f", {args}" if args else "") + f" → {plural(s.matches, 'incident')}.")
        if answer.note:
            lines.append(answer.note)
        return "\n".join(lines) + as_of(answer.data_as_of)
    last = answer.first + answer.returned - 1
    head += f" Showing {answer.first}–{last}"
    head += f" of the {answer.pageable} this plan may page through." if answer.pageable < answer.total_matching else "."
    body = table(HEADER, [row_cells(r) for r in answer.exploits], WIDTHS)
    known = [r.amount_usd for r in answer.exploits if r.amount_usd is not None]
    tail = f"Losses on this page: {usd(sum(known))} across {plural(len(known), 'incident')} with a stated amount."
    if answer.next_cursor:
        tail += f' More: call again with cursor="{answer.next_cursor}".'
    if answer.note:
        tail += " " + answer.note
    return f"{head}\n{body}\n{tail}{as_of(answer.data_as_of)}"
