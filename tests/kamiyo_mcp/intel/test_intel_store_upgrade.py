"""The intel tables' own file: an earlier deployment's tables in the billing file are copied over once, exactly.

The "earlier deployment" is the session's loaded intel file copied to ``kamiyo.db`` and opened by the
real billing store (its tables and a grant added), the layout every SQLite deployment had before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kamiyo_mcp.intel.search import search_exploits
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.support import REPO, base_env

NOW = datetime(2026, 9, 1, tzinfo=UTC)
QUERIES = ("", "flash loan", "Euler", "reentrancy on ethereum", "bridge hacks in 2022", "oracle manipulation bsc",
           "eulr finance", "price oracle over $10m")
COPIED = "Copied the incident tables"


def intel_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every intel table's rows (rowid first where there is one), the search index as its documents and terms.

    ``intel_meta`` without the data generation (a new one is taken) and the copy's mark.
    """
    with sqlite3.connect(path) as conn:
        listed = conn.execute("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' "
                              "AND name LIKE 'intel%' AND type != 'shadow'").fetchall()
        tables = {}
        for name, without_rowid in listed:
            select = "*" if without_rowid or name == "intel_search_vocab" else "rowid, *"
            tables[name] = sorted(conn.execute(f'SELECT {select} FROM "{name}"').fetchall(), key=repr)
    tables["intel_meta"] = [row for row in tables["intel_meta"] if row[1] not in ("generation", "copied_to_own_file")]
    return tables


async def searches(store: IntelStore) -> list[dict[str, Any]]:
    answers = []
    for query in QUERIES:
        answer = await search_exploits(store, query=query, limit=25, tier_cap=100, now=NOW)
        answers.append(answer.model_dump(exclude={"next_cursor"}))
    return answers


@pytest.fixture
async def earlier_deployment(loaded_db: Path, tmp_path: Path) -> Path:
    """``kamiyo.db`` holding the billing tables, a grant, and the intel tables of the whole shared set."""
    billing = tmp_path / "kamiyo.db"
    shutil.copyfile(loaded_db, billing)
    settings = load_settings(base_env(billing, KAMIYO_INTEL_DATABASE=str(billing)))  # the earlier layout
    async with Runtime(settings).opened() as runtime:
        await runtime.authority.issue_grant("earlier@example.com", "team")
    return billing


async def test_an_earlier_deployments_incidents_are_copied_to_their_own_file_with_identical_searches(
    earlier_deployment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = await IntelStore.open(earlier_deployment)
    try:
        expected = await searches(old)
        first_page = await search_exploits(old, query="flash loan", limit=5, tier_cap=100, now=NOW)
        second_page = await search_exploits(old, cursor=first_page.next_cursor, tier_cap=100, now=NOW)
    finally:
        await old.close()
    before = intel_tables(earlier_deployment)
    assert before["intel_pages"]  # the page set of the cursor above

    settings = load_settings(base_env(earlier_deployment))
    with caplog.at_level(logging.INFO, logger="kamiyo_mcp.intel.store_upgrade"):
        async with Runtime(settings).opened() as runtime:
            assert settings.intel_path == earlier_deployment.with_name("kamiyo.intel.db")
            assert await searches(runtime.intel) == expected
            # a page set made before the upgrade still pages after it
            again = await search_exploits(runtime.intel, cursor=first_page.next_cursor, tier_cap=100, now=NOW)
            assert again == second_page
            assert [t.email for t in await runtime.store.list_tokens()] == ["earlier@example.com"]
    assert [r.getMessage() for r in caplog.records if COPIED in r.getMessage()] == [
        f"{COPIED} (1680 reports) from the billing file {earlier_deployment} to their own file "
        f"{settings.intel_path}; the billing file's copies are no longer read (left for a rollback)"]
    copied = intel_tables(settings.intel_path)
    assert copied.keys() == before.keys() and copied == {**before, "intel_pages": copied["intel_pages"]}
    assert set(before["intel_pages"]) <= set(copied["intel_pages"])  # the searches above made page sets
    assert intel_tables(earlier_deployment) == before  # left in place, unread: a rollback still finds them


async def test_the_copy_is_made_once_a_deleted_intel_file_starts_empty(
    earlier_deployment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(base_env(earlier_deployment))
    async with Runtime(settings).opened() as runtime:
        assert await runtime.intel.incident_count() == 1680
    for file in settings.intel_path.parent.glob(settings.intel_path.name + "*"):
        file.unlink()
    with caplog.at_level(logging.INFO, logger="kamiyo_mcp.intel.store_upgrade"):
        async with Runtime(settings).opened() as runtime:
            assert await runtime.intel.incident_count() == 0
    assert COPIED not in caplog.text


async def test_two_processes_opening_at_once_copy_once_and_both_see_every_incident(
    earlier_deployment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intel = earlier_deployment.with_name("kamiyo.intel.db")
    with caplog.at_level(logging.INFO, logger="kamiyo_mcp.intel.store_upgrade"):
        stores = await asyncio.gather(*(IntelStore.open(intel, previous=earlier_deployment) for _ in range(2)))
    try:
        assert [await s.incident_count() for s in stores] == [1680, 1680]
        assert caplog.text.count(COPIED) == 1
    finally:
        for store in stores:
            await store.close()


def test_two_operator_commands_started_together_copy_once(earlier_deployment: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **base_env(earlier_deployment)}
    started = [subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", "token", "list"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [process.communicate(timeout=120)[1] for process in started]
    assert [process.returncode for process in started] == [0, 0], errors
    assert sum(e.count(COPIED) for e in errors) == 1
    with sqlite3.connect(earlier_deployment.with_name("kamiyo.intel.db")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM intel_incidents").fetchone() == (1680,)


_DIES_MID_COPY = """
import asyncio, os, sys
from pathlib import Path
from kamiyo_mcp.intel.store_connection import IntelConnection
from kamiyo_mcp.intel.store import IntelStore

execute = IntelConnection.execute

async def dying(self, sql, params=()):
    if "('generation', ?)" in sql:  # every table copied, not yet committed: the process dies here
        os._exit(17)
    await execute(self, sql, params)

IntelConnection.execute = dying
asyncio.run(IntelStore.open(Path(sys.argv[1]), previous=Path(sys.argv[2])))
"""


async def test_a_copy_cut_short_by_a_crash_leaves_no_incident_and_the_next_open_completes_it(
    earlier_deployment: Path,
) -> None:
    intel = earlier_deployment.with_name("kamiyo.intel.db")
    before = intel_tables(earlier_deployment)
    died = subprocess.run([sys.executable, "-c", _DIES_MID_COPY, str(intel), str(earlier_deployment)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert died.returncode == 17, died.stderr
    with sqlite3.connect(intel) as conn:  # only what committed before the copy's transaction
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'intel%'")]
        assert names == ["intel_schema_version"]
        assert conn.execute("SELECT COUNT(*) FROM intel_schema_version").fetchone() == (0,)

    store = await IntelStore.open(intel, previous=earlier_deployment)
    try:
        assert await store.incident_count() == 1680
    finally:
        await store.close()
    assert intel_tables(intel) == before


async def test_an_intel_file_without_incidents_takes_the_copy_and_one_with_incidents_keeps_its_own(
    earlier_deployment: Path, tmp_path: Path
) -> None:
    intel = tmp_path / "own.db"
    store = await IntelStore.open(intel)
    try:
        await store.set_data_as_of("2026-01-01T00:00:00Z")
        assert not await store.has_incidents()
    finally:
        await store.close()
    store = await IntelStore.open(intel, previous=earlier_deployment)  # no incident: the copy replaces it all
    try:
        assert await store.incident_count() == 1680
        assert (await store.stamp()).data_as_of != "2026-01-01T00:00:00Z"
    finally:
        await store.close()
    with sqlite3.connect(intel) as conn:
        conn.execute("DELETE FROM intel_meta WHERE key = 'data_as_of'")
    store = await IntelStore.open(intel, previous=earlier_deployment)  # incidents: nothing is copied again
    try:
        assert (await store.stamp()).data_as_of is None
    finally:
        await store.close()


async def test_incident_tables_of_a_newer_schema_are_not_copied(
    earlier_deployment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(earlier_deployment) as conn:
        conn.execute("INSERT INTO intel_schema_version (version) VALUES (99)")
    with caplog.at_level(logging.INFO, logger="kamiyo_mcp.intel.store_upgrade"):
        store = await IntelStore.open(earlier_deployment.with_name("kamiyo.intel.db"), previous=earlier_deployment)
    try:
        assert await store.incident_count() == 0
    finally:
        await store.close()
    assert "written by a newer version (schema 99); not copied" in caplog.text and COPIED not in caplog.text


async def test_the_intel_file_and_its_side_files_are_private(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        fresh = await IntelStore.open(tmp_path / "new" / "kamiyo.intel.db")
        (tmp_path / "old.db").write_bytes(b"")
        (tmp_path / "old.db").chmod(0o644)
        tightened = await IntelStore.open(tmp_path / "old.db")
    finally:
        os.umask(mask)
    try:
        files = [*(tmp_path / "new").iterdir(), *tmp_path.glob("old.db*")]
        assert {f.name for f in files} >= {"kamiyo.intel.db", "kamiyo.intel.db-wal", "kamiyo.intel.db-shm", "old.db"}
        assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(stat.S_IMODE((tmp_path / "new").stat().st_mode)) == "0o700"
    finally:
        await fresh.close()
        await tightened.close()
