"""Numbered SQL migrations shipped as package files (`migrations/<dialect>/NNNN_name.sql`).

Each dialect has the same numbers: a PostgreSQL twin of every SQLite migration (BIGINT for times,
BIGSERIAL for autoincrement), so both backends reach the same schema version. Numbers may have gaps
(each line of work reserves its own); every missing one is applied. A migration that must rewrite
stored values with Python (e.g. hashing) has a step in `data_migrations.STEPS`, run right after its
SQL in the same transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import resources

from billing.store import data_migrations
from billing.store.connection import Connection

SCHEMA_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load(dialect: str) -> list[Migration]:
    """Every migration of `dialect`, in version order."""
    folder = resources.files("billing.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], tuple(split_statements(text))))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers are reserved per line of work, so gaps are expected; the runner applies every missing one.
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations of {dialect} share a number: {versions}")
    return found


async def apply(transaction: Callable[[], AbstractAsyncContextManager[Connection]], dialect: str, *, now: int) -> int:
    """Apply the pending migrations of `dialect`, each in its own write transaction; returns how many.

    The check runs inside the transaction, which holds the store's cross-process write lock, so two
    processes starting together apply each migration once.
    """
    applied = 0
    for migration in load(dialect):
        async with transaction() as db:
            await db.execute(SCHEMA_TABLE_SQL)
            done = await db.execute_fetchall("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,))
            if list(done):
                continue
            for statement in migration.statements:
                await db.execute(statement)
            step = data_migrations.STEPS.get(migration.version)
            if step is not None:
                await step(db)
            await db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                             (migration.version, migration.name, now))
            applied += 1
    return applied


def split_statements(script: str) -> list[str]:
    """Split a script into statements; `sqlite3.complete_statement` keeps trigger bodies whole."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            text = _strip_comments(buffer).strip()
            if text.rstrip(";").strip():
                statements.append(text)
            buffer = ""
    if _strip_comments(buffer).strip().rstrip(";").strip():
        raise ValueError("migration script ends with an incomplete statement")
    return statements


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
