"""Keeping the incident data fresh: conditional re-fetches of the network sources, and their schedule.

``refresh_sources`` asks each http(s) source for what changed since its last good answer (ETag /
Last-Modified); a source that answers 304 costs no download, a changed one is loaded and the
incident groups relinked once. A source that fails keeps its data: the failure is recorded (and
shown in /healthz), one log line says so, and ``data_as_of`` stays at the last complete refresh.

``RefreshSchedule`` runs it in ``serve``: on start it loads every source into an empty store, then
refreshes whenever a source's last check is older than the interval (a failed check is retried
after at most ``RETRY_AFTER_S``). Processes sharing the store share the sources' state, so a
refresh one of them made is not repeated by the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from billing.background import sleep_until_woken

from .dates import as_utc, iso_utc, utc_now
from .errors import IntelStoreError, SourceFetchError, SourceFormatError
from .fetch import fetch, safe_url
from .ingest import ingest_if_empty, load_text
from .progress import ProgressBar
from .report import SourceReport
from .store import IntelStore
from .store_sources import SourceState

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 900.0


@dataclass
class RefreshReport:
    """What one refresh did, per source."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    added: int = 0
    updated: int = 0


def is_network(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def refresh_sources(store: IntelStore, urls: Sequence[str], *, now: datetime | None = None) -> RefreshReport:
    """Re-fetch ``urls`` conditionally and load what changed (never raises for a failing source)."""
    moment = iso_utc(now or utc_now())
    states = await store.source_states()
    empty = not await store.has_incidents()
    report = RefreshReport()
    for url in urls:
        state = states.get(url)
        try:
            fetched = await fetch(url, None if empty or state is None else state.validators)
            if not fetched.unchanged:
                loaded = SourceReport(safe_url(url))
                await load_text(store, fetched.text or "", url, loaded, ProgressBar(None))
                report.added += loaded.added
                report.updated += loaded.updated
        except (SourceFetchError, SourceFormatError) as exc:
            report.failed[url] = str(exc)
            await store.record_source_error(url, str(exc), moment)
            continue
        (report.unchanged if fetched.unchanged else report.changed).append(url)
        await store.record_source_ok(url, fetched.validators, moment, changed=not fetched.unchanged)
    if await store.needs_relink():
        await store.relink()
        await store.protocol_index()  # rebuilt now, not on the next call
    if not report.failed and urls:
        await store.set_data_as_of(moment)
    return report


def next_due(states: dict[str, SourceState], urls: Sequence[str], interval: float, now: datetime) -> datetime:
    """When the next refresh is due: the oldest source's last attempt plus the interval (sooner after a failure)."""
    due = []
    for url in urls:
        state = states.get(url)
        if state is None or (state.checked_at is None and state.error_at is None):
            return now
        last_ok = _when(state.checked_at)
        failed = _when(state.error_at)
        if failed is not None and (last_ok is None or failed >= last_ok):
            due.append(failed + timedelta(seconds=min(interval, RETRY_AFTER_S)))
        elif last_ok is not None:
            due.append(last_ok + timedelta(seconds=interval))
    return min(due, default=now)


def _when(text: str | None) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


class RefreshSchedule:
    """``serve``'s refresh loop over the configured sources."""

    def __init__(self, store: IntelStore, sources: Sequence[str], interval: float,
                 *, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._sources = list(sources)
        self.urls = [s for s in sources if is_network(s)]
        self.interval = interval
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopped = False
        self.last: RefreshReport | None = None

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Load an empty store, then refresh on schedule until stopped (failures are logged, never raised).

        A store failure (locked past its busy timeout, damaged) is retried like a failed source: the
        start-up load too, so one bad moment never ends the refreshes for the life of the process.
        """
        started = False
        while not self._stopped:
            try:
                if not started:
                    await self._start()
                    started = True
                if not self.urls or self.interval <= 0:
                    return
                due = next_due(await self._store.source_states(), self.urls, self.interval, self._clock())
                wait = (due - self._clock()).total_seconds()
                if wait <= 0:
                    self.last = await refresh_sources(self._store, self.urls, now=self._clock())
                    await self._log(self.last)
                    continue
            except IntelStoreError as exc:
                wait = self._retry_after
                logger.error("Intel refresh could not use the incident store, keeping the data as it was; "
                             "retrying in %.0f s: %s", wait, exc)
            except Exception:  # the loop outlives any one refresh; the data stays as it was
                wait = self._retry_after
                logger.exception("Intel refresh crashed; keeping the data as it was")
            await sleep_until_woken(self._wake, wait)

    @property
    def _retry_after(self) -> float:
        return min(self.interval, RETRY_AFTER_S) if self.interval > 0 else RETRY_AFTER_S

    async def _start(self) -> None:
        """Load the sources into an empty store; finish the linking of an ingest that stopped before it."""
        if self._sources:
            await ingest_if_empty(self._store, self._sources)
        if await self._store.needs_relink():
            await self._store.relink()
        await self._store.protocol_index()

    async def _log(self, report: RefreshReport) -> None:
        as_of = (await self._store.stamp()).data_as_of or "never"
        if report.failed:
            logger.warning("Intel refresh failed, keeping the data as of %s: %s", as_of,
                           "; ".join(report.failed.values()))
        elif report.changed:
            logger.info("Intel refresh: %d added, %d updated from %s; data as of %s", report.added, report.updated,
                        ", ".join(safe_url(u) for u in report.changed), as_of)
        else:
            logger.info("Intel refresh: sources unchanged; data as of %s", as_of)

    async def health(self) -> dict[str, Any]:
        """The refresh state /healthz shows: on/off, data_as_of, and each source's last check."""
        stamp = await self._store.stamp()
        shown: dict[str, Any] = {"data_as_of": stamp.data_as_of}
        if not self.urls or self.interval <= 0:
            return {**shown, "refresh": "off"}
        states = await self._store.source_states()
        sources = []
        for url in self.urls:
            state = states.get(url)
            entry: dict[str, Any] = {"url": safe_url(url), "checked_at": state.checked_at if state else None,
                                     "changed_at": state.changed_at if state else None}
            if state is not None and state.error:
                entry.update(error=state.error, error_at=state.error_at)
            sources.append(entry)
        failing = any("error" in s for s in sources)
        pending = any(s["checked_at"] is None and "error" not in s for s in sources)
        status = "failed" if failing else "pending" if pending else "ok"
        return {**shown, "refresh": status, "interval_seconds": self.interval, "sources": sources}
