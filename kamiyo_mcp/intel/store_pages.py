"""Page sets: a search's ordered result ids, kept while its caller pages through them (SQL).

A page set is written once, when a search has more results than its first page, and read by id
on every later page; the rows themselves are read fresh. Sets older than ``PAGE_SET_TTL`` are
never read, and are deleted with every hundredth write.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .store_base import StoreBase

PAGE_SET_TTL = timedelta(hours=24)
PRUNE_EVERY = 100


@dataclass(frozen=True, slots=True)
class PageSet:
    """A stored search: what was asked (JSON), its ordered group ids and how many matched in all."""

    id: str
    query: str
    ids: tuple[str, ...]
    total: int
    created_at: str


class StorePages(StoreBase):
    _pages_saved = 0

    async def save_page_set(self, query: str, ids: Sequence[str], total: int, now: datetime) -> str:
        """Store a search's ordered ids; returns the set's id (random, 128 bits)."""
        page_id = secrets.token_urlsafe(16)
        created = now.isoformat(timespec="seconds")
        # One autocommit statement (a trip less than a transaction); expired sets go with it.
        async with self._write_lock:
            await self._w.execute(
                "INSERT INTO intel_pages (id, created_at, query, ids, total) VALUES (?,?,?,?,?)",
                (page_id, created, query, json.dumps(list(ids)), total),
            )
            self._pages_saved += 1
            if self._pages_saved % PRUNE_EVERY == 1:
                stale = (now - PAGE_SET_TTL).isoformat(timespec="seconds")
                await self._w.execute("DELETE FROM intel_pages WHERE created_at < ?", (stale,))
        return page_id

    async def page_set(self, page_id: str, now: datetime) -> PageSet | None:
        """The stored search ``page_id``, or None when unknown or expired."""
        rows = await self._rows(
            "SELECT id, query, ids, total, created_at FROM intel_pages WHERE id = ? AND created_at >= ?",
            (page_id, (now - PAGE_SET_TTL).isoformat(timespec="seconds")),
        )
        if not rows:
            return None
        ident, query, ids, total, created = rows[0]
        return PageSet(ident, query, tuple(json.loads(ids)), int(total), created)

    async def current_groups(self, ids: Sequence[str]) -> dict[str, str]:
        """The incident group each report id belongs to now (ids no longer stored are left out)."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            rows = await self._rows(
                f"SELECT id, group_id FROM intel_incidents WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update({r[0]: r[1] or r[0] for r in rows})
        return found
