"""Bring an intel file up to date: its migrations, and the one-time copy out of the billing file (SQL).

Earlier versions kept the intel tables in the SQLite billing file. They now have a file of their
own, and an upgrade loses nothing: when that file has no incident yet and the billing file's intel
tables do, ``copy_from_billing_file`` copies them over, every table row for row (rowids included;
the search index by re-inserting its documents, which rebuilds it), in ONE transaction on the intel
file: a crash leaves no incident there, and the next start copies again. Two processes starting
at once take turns on the intel file's write lock; the second finds the incidents and copies
nothing. The billing file is only read (a snapshot) and then marked, so the copy is made once;
its intel tables are left in place, unread, so a rollback to an earlier version still finds them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from .dates import utc_now
from .errors import IntelStoreError
from .store_connection import BUSY_TIMEOUT_MS, IntelConnection
from .store_schema import MIGRATIONS

logger = logging.getLogger(__name__)

LATEST = max(MIGRATIONS)
# The mark left in the billing file's intel_meta once its tables were copied (read by no version).
COPIED_MARK = "copied_to_own_file"
# Another process may be copying: wait for its transaction rather than fail to start.
COPY_BUSY_TIMEOUT_MS = 120_000
_MODULE = re.compile(r"\bUSING\s+(\w+)", re.IGNORECASE)


async def migrate(db: IntelConnection) -> None:
    """Create or upgrade the intel tables, in one transaction."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute("CREATE TABLE IF NOT EXISTS intel_schema_version (version INTEGER NOT NULL)")
        await _migrate_from(db, await _version(db, "main"), LATEST)
        await db.execute("COMMIT")
    except BaseException:
        await _rollback(db)
        raise


async def copy_from_billing_file(db: IntelConnection, billing: Path) -> int:
    """Copy the billing file's intel tables into the intel file ``db`` if it has no incident yet.

    Returns the number of incident reports copied (0: nothing to copy, or already copied).

    Raises:
        IntelStoreError: either file could not be read, or the intel file not written.
    """
    if await _has_incidents(db, "main") or not billing.is_file() or await _same_file(db, billing):
        return 0
    await db.execute("CREATE TABLE IF NOT EXISTS intel_schema_version (version INTEGER NOT NULL)")
    await db.execute("ATTACH DATABASE ? AS billing", (os.fspath(billing),))
    try:
        await db.execute(f"PRAGMA busy_timeout = {COPY_BUSY_TIMEOUT_MS}")
        copied = await _copy(db)
        if copied:
            await _mark_copied(db)
    finally:
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("DETACH DATABASE billing")
    if copied:
        logger.info("Copied the incident tables (%d reports) from the billing file %s to their own file %s; "
                    "the billing file's copies are no longer read (left for a rollback)", copied, billing,
                    await _main_file(db))
    return copied


async def _copy(db: IntelConnection) -> int:
    # BEGIN IMMEDIATE would take the billing file's write lock too (every attached file's): a write
    # to the intel file alone takes its lock, and the billing file is only read, so billing writes
    # of running processes go on meanwhile.
    await db.execute("BEGIN")
    try:
        await db.execute("DELETE FROM main.intel_schema_version WHERE 0")
        await db.execute("PRAGMA defer_foreign_keys = ON")  # tables are copied in any order; checked at COMMIT
        source_version = await _version(db, "billing")
        if (await _has_incidents(db, "main") or not await _has_incidents(db, "billing")
                or await _marked(db) or source_version > LATEST):
            if source_version > LATEST:
                logger.warning("The billing file's incident tables were written by a newer version "
                               "(schema %d); not copied", source_version)
            await db.execute("ROLLBACK")
            return 0
        generation = await _generation(db, "main")
        await _drop_intel_tables(db)
        await db.execute("CREATE TABLE intel_schema_version (version INTEGER NOT NULL)")
        await _migrate_from(db, 0, source_version)
        for table, rowid in await _data_tables(db):
            columns = ", ".join(f'"{name}"' for name in await _columns(db, table))
            if rowid:
                columns = "rowid, " + columns
            await db.execute(f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM billing."{table}"')
        await _migrate_from(db, source_version, LATEST)
        # A process already serving this file keys its caches by the generation: never reuse one.
        generation = max(generation, await _generation(db, "main")) + 1
        await db.execute("INSERT INTO main.intel_meta (key, value) VALUES ('generation', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(generation),))
        copied = int((await db.fetchall("SELECT COUNT(*) FROM main.intel_incidents"))[0][0])
        await db.execute("COMMIT")
    except BaseException:
        await _rollback(db)
        raise
    return copied


async def _migrate_from(db: IntelConnection, current: int, target: int) -> None:
    for version in sorted(v for v in MIGRATIONS if current < v <= target):
        for statement in MIGRATIONS[version]:
            await db.execute(statement)
        await db.execute("INSERT INTO main.intel_schema_version (version) VALUES (?)", (version,))


async def _data_tables(db: IntelConnection) -> list[tuple[str, bool]]:
    """(table, has a rowid) of every intel table of the intel file holding rows, the search index included.

    Left out: the version table (the migrations wrote it), FTS5's shadow tables (the index is rebuilt
    from its documents) and virtual tables without rows of their own (fts5vocab).
    """
    listed = await db.fetchall("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'")
    modules = dict(await db.fetchall("SELECT name, sql FROM main.sqlite_master WHERE type = 'table'"))
    tables = []
    for name, kind, without_rowid in listed:
        if not name.startswith("intel_") or name == "intel_schema_version" or kind == "shadow":
            continue
        if kind == "virtual":
            module = _MODULE.search(modules.get(name) or "")
            if module is None or module.group(1).lower() != "fts5":
                continue
        tables.append((name, not without_rowid))
    return tables


async def _drop_intel_tables(db: IntelConnection) -> None:
    """Drop the intel file's tables (it holds no incident: nothing of value), virtual ones first."""
    for kinds in (("virtual",), ("table",)):
        marks = ",".join("?" * len(kinds))
        rows = await db.fetchall(f"SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ({marks})"
                                 " AND name LIKE 'intel\\_%' ESCAPE '\\'", kinds)
        for (name,) in rows:
            await db.execute(f'DROP TABLE IF EXISTS main."{name}"')


async def _columns(db: IntelConnection, table: str) -> list[str]:
    return [str(row[1]) for row in await db.fetchall(f'PRAGMA main.table_info("{table}")')]


async def _has_table(db: IntelConnection, schema: str, table: str) -> bool:
    rows = await db.fetchall(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return bool(rows)


async def _has_incidents(db: IntelConnection, schema: str) -> bool:
    if not await _has_table(db, schema, "intel_incidents"):
        return False
    return bool((await db.fetchall(f"SELECT EXISTS (SELECT 1 FROM {schema}.intel_incidents)"))[0][0])


async def _version(db: IntelConnection, schema: str) -> int:
    if not await _has_table(db, schema, "intel_schema_version"):
        return 0
    return int((await db.fetchall(f"SELECT MAX(version) FROM {schema}.intel_schema_version"))[0][0] or 0)


async def _generation(db: IntelConnection, schema: str) -> int:
    if not await _has_table(db, schema, "intel_meta"):
        return 0
    rows = await db.fetchall(f"SELECT value FROM {schema}.intel_meta WHERE key = 'generation'")
    return int(rows[0][0]) if rows else 0


async def _marked(db: IntelConnection) -> bool:
    if not await _has_table(db, "billing", "intel_meta"):
        return False
    return bool(await db.fetchall("SELECT 1 FROM billing.intel_meta WHERE key = ?", (COPIED_MARK,)))


async def _mark_copied(db: IntelConnection) -> None:
    """Mark the billing file's tables as copied (one write of the billing file, on its own).

    Without the mark (a billing file of schema 1, or the write failed), nothing is lost: the copy
    stands, and the billing file is only copied again if the intel file is emptied or deleted.
    """
    if not await _has_table(db, "billing", "intel_meta"):
        return
    try:
        await db.execute("INSERT INTO billing.intel_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                         (COPIED_MARK, utc_now().isoformat(timespec="seconds")))
    except IntelStoreError:
        logger.warning("The incident tables were copied, but the billing file could not be marked so", exc_info=True)


async def _same_file(db: IntelConnection, billing: Path) -> bool:
    main = await _main_file(db)
    with contextlib.suppress(OSError):
        return bool(main) and os.path.samefile(main, billing)
    return False


async def _main_file(db: IntelConnection) -> str:
    rows = await db.fetchall("SELECT file FROM pragma_database_list WHERE name = 'main'")
    return str(rows[0][0]) if rows else ""


async def _rollback(db: IntelConnection) -> None:
    with contextlib.suppress(IntelStoreError):  # the first failure is the one to report
        await db.execute("ROLLBACK")
