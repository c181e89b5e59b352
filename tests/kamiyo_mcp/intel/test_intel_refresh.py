"""Refreshing network sources: conditional requests, failures that keep the data, and the schedule,
against a real local HTTP server serving DeFiLlama's /hacks format."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from kamiyo_mcp.intel.errors import IntelStoreError, NoIncidentDataError
from kamiyo_mcp.intel.fetch import Validators
from kamiyo_mcp.intel.ingest import ingest_sources
from kamiyo_mcp.intel.refresh import RETRY_AFTER_S, RefreshSchedule, next_due, refresh_sources
from kamiyo_mcp.intel.search import search_exploits
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.intel.store_sources import SourceState

from .conftest import LocalServer

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
ETAG = '"v1"'
LAST_MODIFIED = "Mon, 31 Aug 2026 10:00:00 GMT"


def hacks(*names: str) -> bytes:
    day = int(datetime(2026, 8, 30, tzinfo=UTC).timestamp())
    return json.dumps([
        {"date": day, "name": n, "classification": "Protocol Logic", "technique": "Test Exploit", "amount": 1e6,
         "chain": ["Ethereum"], "bridgeHack": False, "targetType": "DeFi Protocol", "source": "",
         "returnedFunds": None, "defillamaId": None, "language": "Solidity"}
        for n in names
    ]).encode()


class Source:
    """A /hacks endpoint whose content, validators and health the test changes."""

    def __init__(self, local_server: Any, *, etag: str | None = ETAG, last_modified: str | None = None) -> None:
        self.body = hacks("Alpha Protocol")
        self.etag, self.last_modified = etag, last_modified
        self.failing = False
        self.server: LocalServer = local_server(self.route)
        self.url = self.server.url + "/hacks?api_key=not-for-logs"

    def route(self, path: str, query: dict[str, list[str]]) -> tuple[Any, ...]:
        if self.failing:
            return 503, "text/plain", b"maintenance"
        asked = self.server.headers_seen[-1]
        if (self.etag and asked.get("if-none-match") == self.etag) or (
                self.last_modified and asked.get("if-modified-since") == self.last_modified):
            return 304, "application/json", b""
        headers = {k: v for k, v in (("ETag", self.etag), ("Last-Modified", self.last_modified)) if v}
        return 200, "application/json", self.body, headers


async def _names(store: IntelStore) -> set[str]:
    answer = await search_exploits(store, query="", since="2026-08-01", tier_cap=50)
    return {e.protocol for e in answer.exploits}


async def test_a_refresh_loads_the_source_and_remembers_its_validators(empty_store: IntelStore, local_server) -> None:
    source = Source(local_server)
    report = await refresh_sources(empty_store, [source.url], now=NOW)
    assert (report.changed, report.added, report.failed) == ([source.url], 1, {})
    assert await _names(empty_store) == {"Alpha Protocol"}
    state = (await empty_store.source_states())[source.url]
    assert (state.validators.etag, state.checked_at, state.changed_at) == (ETAG, "2026-09-01T12:00:00Z",
                                                                             "2026-09-01T12:00:00Z")
    assert (await empty_store.stamp()).data_as_of == "2026-09-01T12:00:00Z"


async def test_an_unchanged_source_answers_304_and_the_data_is_confirmed_current(empty_store: IntelStore,
                                                                                 local_server) -> None:
    source = Source(local_server)
    await refresh_sources(empty_store, [source.url], now=NOW)
    generation = (await empty_store.stamp()).generation
    later = NOW + timedelta(hours=6)
    report = await refresh_sources(empty_store, [source.url], now=later)
    assert report.unchanged == [source.url] and report.added == report.updated == 0
    assert source.server.headers_seen[-1]["if-none-match"] == ETAG
    stamp = await empty_store.stamp()
    assert stamp.generation == generation and stamp.data_as_of == "2026-09-01T18:00:00Z"
    state = (await empty_store.source_states())[source.url]
    assert (state.checked_at, state.changed_at) == ("2026-09-01T18:00:00Z", "2026-09-01T12:00:00Z")


async def test_if_modified_since_is_sent_when_the_source_gives_no_etag(empty_store: IntelStore, local_server) -> None:
    source = Source(local_server, etag=None, last_modified=LAST_MODIFIED)
    await refresh_sources(empty_store, [source.url], now=NOW)
    report = await refresh_sources(empty_store, [source.url], now=NOW + timedelta(hours=6))
    asked = source.server.headers_seen[-1]
    assert report.unchanged == [source.url]
    assert asked["if-modified-since"] == LAST_MODIFIED and "if-none-match" not in asked


async def test_a_changed_source_adds_its_new_incidents(empty_store: IntelStore, local_server) -> None:
    source = Source(local_server)
    await refresh_sources(empty_store, [source.url], now=NOW)
    source.body, source.etag = hacks("Alpha Protocol", "Beta Finance"), '"v2"'
    report = await refresh_sources(empty_store, [source.url], now=NOW + timedelta(hours=6))
    assert (report.changed, report.added) == ([source.url], 1)
    assert await _names(empty_store) == {"Alpha Protocol", "Beta Finance"}
    assert (await empty_store.source_states())[source.url].validators.etag == '"v2"'


async def test_a_failed_refresh_keeps_the_data_and_says_so(empty_store: IntelStore, local_server) -> None:
    source = Source(local_server)
    await refresh_sources(empty_store, [source.url], now=NOW)
    source.failing = True
    report = await refresh_sources(empty_store, [source.url], now=NOW + timedelta(hours=6))
    assert "HTTP 503" in report.failed[source.url] and "api_key" not in report.failed[source.url]
    assert await _names(empty_store) == {"Alpha Protocol"}
    assert (await empty_store.stamp()).data_as_of == "2026-09-01T12:00:00Z"
    state = (await empty_store.source_states())[source.url]
    assert state.error and state.error_at == "2026-09-01T18:00:00Z" and state.validators.etag == ETAG
    source.failing = False
    recovered = await refresh_sources(empty_store, [source.url], now=NOW + timedelta(hours=7))
    assert recovered.unchanged == [source.url]
    assert (await empty_store.source_states())[source.url].error is None


async def test_a_source_answering_something_unreadable_is_a_failure_not_a_wipe(empty_store: IntelStore,
                                                                              local_server) -> None:
    source = Source(local_server)
    await refresh_sources(empty_store, [source.url], now=NOW)
    source.body, source.etag = b"<html>gateway error</html>", '"broken"'
    report = await refresh_sources(empty_store, [source.url], now=NOW + timedelta(hours=6))
    assert "unrecognised format" in report.failed[source.url]
    assert await _names(empty_store) == {"Alpha Protocol"}
    assert (await empty_store.source_states())[source.url].validators.etag == ETAG  # not the broken answer's


def _state(checked: str | None, error_at: str | None = None) -> SourceState:
    return SourceState("u", Validators(), checked, checked, "boom" if error_at else None, error_at)


@pytest.mark.parametrize(
    ("state", "due"),
    [
        (None, NOW),
        (_state("2026-09-01T10:00:00Z"), datetime(2026, 9, 1, 16, 0, tzinfo=UTC)),
        (_state("2026-09-01T10:00:00Z", "2026-09-01T11:00:00Z"),
         datetime(2026, 9, 1, 11, 0, tzinfo=UTC) + timedelta(seconds=RETRY_AFTER_S)),
        (_state("2026-09-01T11:30:00Z", "2026-09-01T11:00:00Z"), datetime(2026, 9, 1, 17, 30, tzinfo=UTC)),
    ],
)
def test_the_next_refresh_is_due_an_interval_after_the_last_check_and_sooner_after_a_failure(
    state: SourceState | None, due: datetime
) -> None:
    states = {} if state is None else {"u": state}
    assert next_due(states, ["u"], 6 * 3600, NOW) == due


async def test_a_manual_ingest_of_a_url_records_its_validators(empty_store: IntelStore, local_server) -> None:
    source = Source(local_server)
    report = await ingest_sources(empty_store, [source.url])
    assert report.added == 1 and "api_key" not in report.format()
    assert (await empty_store.source_states())[source.url].validators.etag == ETAG
    assert (await refresh_sources(empty_store, [source.url], now=NOW)).unchanged == [source.url]


def _drop_sources_table(db: Path) -> str:
    """Drop ``intel_sources`` from outside the store (a damaged file); returns the DDL to restore it."""
    with sqlite3.connect(db) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'intel_sources'").fetchone()[0]
        conn.execute("DROP TABLE intel_sources")
    return str(ddl)


def _restore(db: Path, ddl: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(ddl)


async def _found_by_word(store: IntelStore, word: str) -> set[str]:
    return {e.protocol for e in (await search_exploits(store, query=word, tier_cap=50)).exploits}


async def test_an_ingest_stopped_before_linking_is_linked_by_the_next_one(tmp_path: Path, local_server: Any) -> None:
    source = Source(local_server)
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    try:
        ddl = _drop_sources_table(tmp_path / "kamiyo.db")
        with pytest.raises(IntelStoreError):  # the reports are written, then recording the source fails
            await ingest_sources(store, [source.url])
        assert await store.needs_relink()
        with pytest.raises(NoIncidentDataError):  # written but in no incident yet: nothing to search
            await _found_by_word(store, "alpha")
        _restore(tmp_path / "kamiyo.db", ddl)
        again = await ingest_sources(store, [source.url])
        assert again.added == 0  # nothing new, yet the earlier reports are linked and searchable now
        assert await _found_by_word(store, "alpha") == {"Alpha Protocol"} and not await store.needs_relink()
    finally:
        await store.close()


class _Awaited(logging.Handler):
    """Sets ``event`` when a record's message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text, self.event = text, asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_the_refresh_loop_outlives_a_store_failure_and_finishes_the_load(tmp_path: Path,
                                                                              local_server: Any) -> None:
    source = Source(local_server)
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    ddl = _drop_sources_table(tmp_path / "kamiyo.db")
    failed, refreshed = _Awaited("could not use the incident store"), _Awaited("Intel refresh: ")
    log = logging.getLogger("kamiyo_mcp.intel.refresh")
    level = log.level
    log.setLevel(logging.INFO)
    for handler in (failed, refreshed):
        log.addHandler(handler)
    schedule = RefreshSchedule(store, [source.url], interval=0.05)
    task = asyncio.create_task(schedule.run())
    try:
        with anyio.fail_after(15):
            await failed.event.wait()
        assert not task.done()  # the start-up load failed; the loop retries it
        _restore(tmp_path / "kamiyo.db", ddl)
        with anyio.fail_after(15):
            await refreshed.event.wait()
        assert await _found_by_word(store, "alpha") == {"Alpha Protocol"}
        assert (await schedule.health())["refresh"] == "ok"
    finally:
        schedule.stop()
        with anyio.fail_after(15):
            await task  # ends cleanly: no exception escapes the loop
        for handler in (failed, refreshed):
            log.removeHandler(handler)
        log.setLevel(level)
        await store.close()
