"""Fixtures of the billing tests: an open SQLite store in tmp_path (tests/billing/store/ runs both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from billing.store import SQLiteStore, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SQLiteStore.open(tmp_path / "kamiyo.db")
    try:
        yield opened
    finally:
        await opened.close()
