"""SQLite's errors leave the incident store as IntelStoreError, never as the driver's own exceptions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kamiyo_mcp.intel.errors import IntelError, IntelStoreError
from kamiyo_mcp.intel.records import Incident
from kamiyo_mcp.intel.search_spec import SearchSpec
from kamiyo_mcp.intel.store import IntelStore

NOMAD = Incident(id="defillama:2022-08-01:nomad-bridge", source="defillama", date="2022-08-01",
                 protocol="Nomad Bridge", chains=("Ethereum",), amount_usd=190_000_000)


def drop_table(db: Path, table: str) -> None:
    """Damage the file from outside the store, as another program or a bad restore would."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(f"DROP TABLE {table}")


def assert_from_sqlite(error: pytest.ExceptionInfo[IntelStoreError], words: str) -> None:
    assert not isinstance(error.value, sqlite3.Error)
    assert isinstance(error.value.__cause__, sqlite3.Error)
    assert words in str(error.value)


async def test_a_read_of_a_damaged_store_raises_the_stores_error_naming_sqlites(tmp_path: Path) -> None:
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    try:
        await store.apply_incidents([NOMAD])
        await store.relink()
        drop_table(tmp_path / "kamiyo.db", "intel_search")
        with pytest.raises(IntelStoreError) as error:
            await store.search_ids(SearchSpec(match='"nomad"*'), limit=10)
        assert_from_sqlite(error, "no such table: intel_search")
        assert (await store.search_ids(SearchSpec(), limit=10))[0] == 1  # other reads still answer
    finally:
        await store.close()


async def test_a_failed_write_rolls_back_and_the_next_write_runs(tmp_path: Path) -> None:
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    try:
        drop_table(tmp_path / "kamiyo.db", "intel_incident_chains")
        with pytest.raises(IntelStoreError) as error:
            await store.apply_incidents([NOMAD])
        assert_from_sqlite(error, "intel_incident_chains")
        assert await store.incident_count() == 0  # the report written before the failure is gone
        await store.set_data_as_of("2026-01-01T00:00:00Z")  # the write lock and transaction were released
        assert (await store.stamp()).data_as_of == "2026-01-01T00:00:00Z"
    finally:
        await store.close()


async def test_a_file_that_cannot_be_opened_is_the_stores_error(tmp_path: Path) -> None:
    (tmp_path / "kamiyo.db").mkdir()  # a directory where the file should be
    with pytest.raises(IntelStoreError) as error:
        await IntelStore.open(tmp_path / "kamiyo.db")
    assert_from_sqlite(error, "unable to open database file")


async def test_a_directory_that_cannot_be_created_is_the_stores_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(IntelStoreError) as error:
        await IntelStore.open(tmp_path / "file" / "kamiyo.db")
    assert isinstance(error.value.__cause__, OSError) and isinstance(error.value, IntelError)


async def test_a_closed_store_raises_the_stores_error(tmp_path: Path) -> None:
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    await store.close()
    with pytest.raises(IntelStoreError):
        await store.has_incidents()
    await store.close()  # closing twice is not an error


async def test_a_refused_commit_is_rolled_back_and_the_next_write_runs(tmp_path: Path) -> None:
    store = await IntelStore.open(tmp_path / "kamiyo.db")
    try:
        with pytest.raises(IntelStoreError) as error:
            async with store._transaction():  # a deferred foreign key: SQLite refuses the COMMIT itself
                await store._w.execute("PRAGMA defer_foreign_keys = ON")
                await store._w.execute("INSERT INTO intel_incident_chains (incident_id, chain, chain_key)"
                                       " VALUES ('no-such-incident', 'Ethereum', 'ethereum')")
        assert_from_sqlite(error, "FOREIGN KEY constraint failed")
        await store.apply_incidents([NOMAD])  # the writer is not left inside the refused transaction
        assert await store.incident_count() == 1
        assert await store._scalar("SELECT COUNT(*) FROM intel_incident_chains") == 1
    finally:
        await store.close()
