"""What the store remembers about each network source: validators, last check, last error (SQL)."""

from __future__ import annotations

from dataclasses import dataclass

from .fetch import Validators
from .store_base import StoreBase


@dataclass(frozen=True, slots=True)
class SourceState:
    """The last check of one source URL (times are ISO 8601, UTC)."""

    url: str
    validators: Validators
    checked_at: str | None  # the last successful check (changed or not)
    changed_at: str | None  # the last check that brought new data
    error: str | None  # the last failure, when it came after the last success
    error_at: str | None


class StoreSources(StoreBase):
    async def source_states(self) -> dict[str, SourceState]:
        """Every source URL's last check."""
        rows = await self._rows(
            "SELECT url, etag, last_modified, checked_at, changed_at, error, error_at FROM intel_sources ORDER BY url"
        )
        return {r[0]: SourceState(r[0], Validators(r[1], r[2]), r[3], r[4], r[5], r[6]) for r in rows}

    async def record_source_ok(self, url: str, validators: Validators, at: str, *, changed: bool) -> None:
        """A successful check of ``url`` at ``at`` (clears its error)."""
        async with self._transaction():
            await self._w.execute(
                "INSERT INTO intel_sources (url, etag, last_modified, checked_at, changed_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
                "checked_at = excluded.checked_at, changed_at = COALESCE(excluded.changed_at, changed_at), "
                "error = NULL, error_at = NULL",
                (url, validators.etag, validators.last_modified, at, at if changed else None),
            )

    async def record_source_error(self, url: str, error: str, at: str) -> None:
        """A failed check of ``url`` (its validators and last success are kept)."""
        async with self._transaction():
            await self._w.execute(
                "INSERT INTO intel_sources (url, error, error_at) VALUES (?,?,?) "
                "ON CONFLICT (url) DO UPDATE SET error = excluded.error, error_at = excluded.error_at",
                (url, error, at),
            )
