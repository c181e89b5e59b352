"""AnyStore fixtures: every store test runs on SQLite (a file in tmp_path) and on PostgreSQL.

PostgreSQL is a throwaway cluster started once per session (`tests/postgres_cluster.py`), or the
server `KAMIYO_TEST_POSTGRES_URL` names (a URL whose user may create databases); each test gets a
fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from billing.store import AnyStore, open_store
from tests.postgres_cluster import start_cluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server database from which test databases are created."""
    given = os.environ.get("KAMIYO_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    cluster = start_cluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    name = "kamiyo_test_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_server, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for a fresh store, once per backend."""
    if request.param == "sqlite":
        return str(tmp_path / "kamiyo.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    """An open store on a fresh database, once per backend."""
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
