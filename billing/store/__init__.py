"""The store behind the billing authority, selected by the database URL."""

from __future__ import annotations

from pathlib import Path

from billing.errors import ConfigurationError
from billing.store.sqlite import SQLiteStore

Store = SQLiteStore


def sqlite_path(url: str) -> Path:
    """The file path a SQLite database URL (or a plain path) names.

    Raises:
        ConfigurationError: the URL is not a SQLite URL or path.
    """
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        # sqlite:////abs/path keeps its leading slash; sqlite:///rel/path is relative.
        return Path(path)
    if url.startswith("sqlite://"):
        raise ConfigurationError("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
    if "://" in url or url.startswith(("postgres:", "postgresql:")):
        raise ConfigurationError(f"unsupported database URL scheme {url.split(':', 1)[0]!r}")
    if not url.strip():
        raise ConfigurationError("the database URL is empty")
    return Path(url).expanduser()


async def open_store(url: str) -> Store:
    """Open the store a database URL names (only SQLite for now)."""
    return await SQLiteStore.open(sqlite_path(url))
