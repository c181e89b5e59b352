"""Paging a search: cursors, stability while data is ingested, tier caps and the answer budget."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kamiyo_mcp.intel.budget import BUDGET_BYTES, answer_size
from kamiyo_mcp.intel.errors import IntelInputError
from kamiyo_mcp.intel.ingest import ingest_sources
from kamiyo_mcp.intel.records import Incident
from kamiyo_mcp.intel.render_search import render_search
from kamiyo_mcp.intel.search import search_exploits
from kamiyo_mcp.intel.store import IntelStore

NOW = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
async def loaded(loaded_db: Path, tmp_path: Path) -> AsyncIterator[IntelStore]:
    """A store of its own (these tests write), copied from the session's loaded file."""
    shutil.copyfile(loaded_db, tmp_path / "paging.db")
    store = await IntelStore.open(tmp_path / "paging.db")
    yield store
    await store.close()


def _defillama_rows(*rows: tuple[str, str, float, list[str]]) -> str:
    return json.dumps([
        {"date": int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()), "name": name, "amount": amount,
         "chain": chains, "classification": "Protocol Logic", "technique": "Test Exploit", "bridgeHack": False,
         "targetType": "DeFi Protocol", "source": "", "returnedFunds": None, "defillamaId": None, "language": None}
        for day, name, amount, chains in rows
    ])


async def test_pages_neither_repeat_nor_skip_while_new_incidents_are_ingested(loaded: IntelStore,
                                                                               tmp_path: Path) -> None:
    first = await search_exploits(loaded, until="2026-05-31", limit=50, tier_cap=200, now=NOW)
    seen = [e.id for e in first.exploits]
    # A BlockSec-only incident of this search that a new DeFiLlama report will join (its canonical changes).
    orphan = next(e for e in first.exploits[10:] if e.source == "blocksec")
    fresh = tmp_path / "hacks.json"
    fresh.write_text(_defillama_rows(("2026-05-30", "Brand New Protocol", 5e6, ["Ethereum"]),
                                     ("2026-05-29", "Another New One", 1e6, ["BSC"]),
                                     (orphan.date, orphan.protocol, orphan.amount_usd or 1e6, orphan.chains)))
    report = await ingest_sources(loaded, [str(fresh)])
    assert report.added == 3
    regrouped = (await loaded.get_incident(orphan.id))
    assert regrouped is not None and not regrouped.is_canonical  # DeFiLlama's report now leads that incident
    cursor = first.next_cursor
    pages = 1
    while cursor:
        page = await search_exploits(loaded, cursor=cursor, limit=50, tier_cap=200, now=NOW)
        assert page.understood_as.until == "2026-05-31"
        seen += [e.id for e in page.exploits]
        cursor, pages = page.next_cursor, pages + 1
    assert pages == 4 and len(seen) == len(set(seen)) == 200
    assert not any(ident.endswith(("brand-new-protocol", "another-new-one")) for ident in seen)
    assert orphan.id in seen  # shown once, on the page where it was
    fresh_search = await search_exploits(loaded, until="2026-05-31", limit=10, tier_cap=200, now=NOW)
    assert {"Brand New Protocol", "Another New One"} <= {e.protocol for e in fresh_search.exploits}


async def test_paging_while_an_ingest_runs_at_the_same_time_neither_repeats_nor_skips(loaded: IntelStore,
                                                                                      tmp_path: Path) -> None:
    first = await search_exploits(loaded, until="2026-05-31", limit=20, tier_cap=200, now=NOW)
    fresh = tmp_path / "hacks.json"
    fresh.write_text(_defillama_rows(*((f"2026-05-{1 + n % 30:02d}", f"Concurrent {n}", 1e6 + n, ["Ethereum"])
                                       for n in range(1500))))
    ingest = asyncio.create_task(ingest_sources(loaded, [str(fresh)]))  # three write batches and a relink
    seen, cursor, overlapped = [e.id for e in first.exploits], first.next_cursor, 0
    while cursor:
        page = await search_exploits(loaded, cursor=cursor, limit=20, tier_cap=200, now=NOW)
        overlapped += not ingest.done()
        seen += [e.id for e in page.exploits]
        cursor = page.next_cursor
    report = await ingest
    assert report.added == 1500 and overlapped > 0, "the pages should be read while the ingest runs"
    assert len(seen) == len(set(seen)) == 200
    assert not any("concurrent-" in ident for ident in seen)
    after = await search_exploits(loaded, query="concurrent", limit=1, tier_cap=200, now=NOW)
    assert after.total_matching == 1500


async def test_a_later_page_shows_an_incident_under_its_new_canonical_report(loaded: IntelStore,
                                                                             tmp_path: Path) -> None:
    page = await search_exploits(loaded, until="2026-05-31", limit=10, tier_cap=200, now=NOW)
    cursor, orphan = None, None
    while orphan is None and page.next_cursor:
        cursor = page.next_cursor
        page = await search_exploits(loaded, cursor=cursor, limit=10, tier_cap=200, now=NOW)
        orphan = next((e for e in page.exploits if e.source == "blocksec"), None)
    assert orphan is not None and cursor is not None, "no BlockSec-only incident to regroup in 200 results"
    fresh = tmp_path / "hacks.json"
    fresh.write_text(_defillama_rows((orphan.date, orphan.protocol, orphan.amount_usd or 1e6, orphan.chains)))
    await ingest_sources(loaded, [str(fresh)])
    again = await search_exploits(loaded, cursor=cursor, limit=10, tier_cap=200, now=NOW)
    replaced = [e for e in again.exploits if e.date == orphan.date and e.protocol == orphan.protocol]
    assert [e.source for e in replaced] == ["defillama"]
    assert orphan.id not in [e.id for e in again.exploits]


async def test_a_cursor_continues_only_its_own_search(loaded: IntelStore) -> None:
    first = await search_exploits(loaded, query="flash loan", limit=5, tier_cap=50, now=NOW)
    same = await search_exploits(loaded, query="flash loan", cursor=first.next_cursor, limit=5, tier_cap=50, now=NOW)
    assert same.first == 6 and same.understood_as.words == ["flash", "loan"]
    with pytest.raises(IntelInputError, match="continues the search for 'flash loan"):
        await search_exploits(loaded, query="reentrancy", cursor=first.next_cursor, tier_cap=50, now=NOW)


@pytest.mark.parametrize("cursor", ["", "abc", "x" * 20, "A" * 22 + ".-1", "A" * 22 + ".5 OR 1=1", "../../etc.1"])
async def test_a_cursor_not_made_by_the_server_is_refused(loaded: IntelStore, cursor: str) -> None:
    with pytest.raises(IntelInputError, match="cursor: "):
        await search_exploits(loaded, cursor=cursor, tier_cap=50, now=NOW)


async def test_an_expired_cursor_says_to_search_again(loaded: IntelStore) -> None:
    first = await search_exploits(loaded, limit=5, tier_cap=50, now=NOW)
    with pytest.raises(IntelInputError, match="expired .* start a new search"):
        await search_exploits(loaded, cursor=first.next_cursor, tier_cap=50, now=NOW + timedelta(hours=25))


async def test_a_cursor_taken_to_a_lower_tier_stops_at_that_tiers_cap(loaded: IntelStore) -> None:
    first = await search_exploits(loaded, limit=40, tier_cap=1000, now=NOW)
    second = await search_exploits(loaded, cursor=first.next_cursor, limit=40, tier_cap=50, now=NOW)
    assert second.pageable == 50 and second.returned == 10 and second.next_cursor is None


async def test_a_page_stops_at_the_answer_budget_and_continues_with_a_cursor(loaded: IntelStore) -> None:
    answer = await search_exploits(loaded, limit=1000, tier_cap=1000, now=NOW)
    assert 50 < answer.returned < 1000 and answer.next_cursor and "100 KB" in (answer.note or "")
    assert answer_size(answer.wire(), render_search(answer)) <= BUDGET_BYTES
    following = await search_exploits(loaded, cursor=answer.next_cursor, limit=1000, tier_cap=1000, now=NOW)
    assert following.first == answer.returned + 1


async def test_a_search_that_fits_one_page_keeps_no_page_set(loaded: IntelStore) -> None:
    answer = await search_exploits(loaded, query="euler", tier_cap=50, now=NOW)
    assert answer.next_cursor is None and answer.returned == answer.total_matching
    assert await loaded._scalar("SELECT COUNT(*) FROM intel_pages") == 0


async def test_a_new_report_of_a_known_incident_shows_only_once_linked(loaded: IntelStore) -> None:
    page = await search_exploits(loaded, until="2026-05-31", limit=200, tier_cap=200, now=NOW)
    orphan = next(e for e in page.exploits if e.source == "blocksec")  # an incident only BlockSec reports
    report = Incident(id=f"defillama:{orphan.date}:late-report", source="defillama", date=orphan.date,
                      protocol=orphan.protocol, chains=tuple(orphan.chains), amount_usd=orphan.amount_usd or 1e6)
    await loaded.apply_incidents([report])  # written, not linked yet (an ingest between its batches and relink)
    meanwhile = await search_exploits(loaded, until=orphan.date, since=orphan.date, tier_cap=200, now=NOW)
    assert report.id not in [e.id for e in meanwhile.exploits] and orphan.id in [e.id for e in meanwhile.exploits]
    await loaded.relink()
    linked = await search_exploits(loaded, until=orphan.date, since=orphan.date, tier_cap=200, now=NOW)
    ids = [e.id for e in linked.exploits]
    assert report.id in ids and orphan.id not in ids  # one incident, now under DeFiLlama's report
    assert linked.total_matching == meanwhile.total_matching
