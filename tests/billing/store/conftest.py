"""AnyStore fixtures: every store test runs on SQLite (a file in tmp_path) and on PostgreSQL.

PostgreSQL databases come from `postgres_url` (tests/conftest.py): a fresh database per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from billing.store import AnyStore, open_store

BACKENDS = ("sqlite", "postgresql")


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
