"""The store behind the billing authority, selected by the database URL.

    sqlite:///relative.db, sqlite:////absolute.db or a plain path  → SQLiteStore (one file)
    postgresql://user:pass@host:5432/db (or postgres://)           → PostgresStore (asyncpg pool)
"""

from __future__ import annotations

from pathlib import Path

from billing.errors import ConfigurationError
from billing.store.postgres import DEFAULT_POOL_MAX, DEFAULT_POOL_MIN, PostgresStore
from billing.store.sqlite import SQLiteStore
from billing.tiers import DEFAULT_TIERS, TierTable

# The store behind the authority: either backend, same interface, chosen by `open_store`.
AnyStore = SQLiteStore | PostgresStore
Store = AnyStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

__all__ = ["DEFAULT_POOL_MAX", "DEFAULT_POOL_MIN", "POSTGRES_SCHEMES", "AnyStore", "PostgresStore", "SQLiteStore",
           "Store", "is_postgres_url", "open_store", "sqlite_path"]


def is_postgres_url(url: str) -> bool:
    return url.strip().lower().startswith(POSTGRES_SCHEMES)


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


async def open_store(url: str, *, pool_min: int = DEFAULT_POOL_MIN, pool_max: int = DEFAULT_POOL_MAX,
                     tiers: TierTable = DEFAULT_TIERS) -> AnyStore:
    """Open the store a database URL names (pool sizes apply to PostgreSQL only); calls are admitted
    against the tier table `tiers` (the settings' one: KAMIYO_TIERS_FILE applied).

    Raises:
        ConfigurationError: the URL names no supported database.
        StoreError: the database cannot be opened.
    """
    if is_postgres_url(url):
        return await PostgresStore.open(url.strip(), pool_min=pool_min, pool_max=pool_max, tiers=tiers)
    return await SQLiteStore.open(sqlite_path(url), tiers=tiers)
