"""The SQLite store: the one shared truth of the billing authority (only store modules hold SQL).

Three aiosqlite connections, each with its own thread:
- `_write`: billing state, `synchronous=FULL`, one `BEGIN IMMEDIATE` transaction at a time;
- `_usage`: call counters, `synchronous=NORMAL` (losing the last increments to a power cut is
  harmless, an fsync per tool call is not), autocommit single statements;
- `_read`: point reads outside any transaction.
WAL lets readers run while a writer commits, and other processes on the same file see every
commit, so a revocation or a quota count is shared by every process on the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from billing.errors import NotFoundError, StoreError
from billing.store import migrations
from billing.store.billing_sql import BillingSQL
from billing.store.call_counter import CallCounter
from billing.store.customers_sql import CustomersSQL
from billing.store.records import AuditEntry, CallCount, NewToken, TokenRow, TokenState

BUSY_TIMEOUT_MS = 10_000

_TOKEN_STATE_SQL = """
SELECT t.token_id, t.user_id, c.email, t.subscription_id, s.kind, s.stripe_subscription_id,
       c.stripe_customer_id, s.tier, s.status, s.current_period_end, s.cancel_at_period_end,
       s.payment_state, t.created_at, t.expires_at, t.revoked_at, t.revoked_reason,
       u.minute_start, COALESCE(u.minute_count, 0), u.day_start, COALESCE(u.day_count, 0)
FROM tokens AS t
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
JOIN customers AS c ON c.user_id = t.user_id
LEFT JOIN usage AS u ON u.subscription_id = t.subscription_id
"""

_TOKEN_ROW_SQL = """
SELECT t.token_id, t.user_id, c.email, t.subscription_id, s.tier, s.status, t.created_at,
       t.expires_at, t.revoked_at, t.revoked_reason
FROM tokens AS t
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
JOIN customers AS c ON c.user_id = t.user_id
"""


class SQLiteStore(BillingSQL, CustomersSQL):
    """Named async operations over one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path, write: aiosqlite.Connection, usage: aiosqlite.Connection,
                 read: aiosqlite.Connection) -> None:
        self.path = path
        self._write = write
        self._usage = usage
        self._read = read
        self._calls = CallCounter(usage)
        self._write_lock = asyncio.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        """Open (creating if needed) the database at `path` and apply pending migrations."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write = await _connect(path, synchronous="FULL")
        usage = await _connect(path, synchronous="NORMAL")
        read = await _connect(path, synchronous="NORMAL")
        store = cls(path, write, usage, read)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        for conn in (self._usage, self._read, self._write):
            try:
                await conn.close()
            except (ValueError, sqlite3.Error):
                pass

    async def ping(self) -> bool:
        rows = await self._read.execute_fetchall("SELECT 1")
        return list(rows) == [(1,)]

    async def schema_version(self) -> int:
        rows = await self._read.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(list(rows)[0][0])

    async def _migrate(self) -> None:
        await self._write.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        for migration in migrations.load(self.dialect):
            async with self.transaction() as db:
                # Checked inside the write lock: two processes starting at once apply it once.
                done = await db.execute_fetchall(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                )
                if list(done):
                    continue
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, unixepoch())",
                    (migration.version, migration.name),
                )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (`BEGIN IMMEDIATE`): all of it is committed, or none of it."""
        async with self._write_lock:
            await self._write.execute("BEGIN IMMEDIATE")
            try:
                yield self._write
            except BaseException:
                await self._write.execute("ROLLBACK")
                raise
            await self._write.execute("COMMIT")

    # ---- the per-call path -----------------------------------------------------------------

    async def consume_call(self, token_hash: str, *, now: int, min_rank: int) -> CallCount | None:
        """Admit and count one tool call, or return None when it is not admitted."""
        return await self._calls.consume(token_hash, now=now, min_rank=min_rank)

    async def token_state(self, token_hash: str) -> TokenState | None:
        rows = await self._read.execute_fetchall(_TOKEN_STATE_SQL + " WHERE t.token_hash = ?", (token_hash,))
        for row in rows:
            return _token_state(row)
        return None

    # ---- customers and entitlements --------------------------------------------------------

    async def find_user_id(self, email: str) -> str | None:
        rows = await self._read.execute_fetchall(
            "SELECT user_id FROM customers WHERE email = ? ORDER BY created_at, user_id LIMIT 1", (email,)
        )
        for row in rows:
            return str(row[0])
        return None

    async def _ensure_customer(self, db: aiosqlite.Connection, email: str, user_id: str, *, now: int) -> str:
        """The user id of the customer with `email`, created as `user_id` if there is none."""
        rows = list(await db.execute_fetchall(
            "SELECT user_id FROM customers WHERE email = ? ORDER BY created_at, user_id LIMIT 1", (email,)
        ))
        if rows:
            return str(rows[0][0])
        await db.execute(
            "INSERT INTO customers (user_id, email, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (user_id, email, now, now),
        )
        return user_id

    async def create_grant(self, email: str, tier: str, token: NewToken, *, now: int,
                           audit: AuditEntry) -> str:
        """Create an operator grant and its first token in one transaction; returns the user id."""
        async with self.transaction() as db:
            user_id = await self._ensure_customer(db, email, token.user_id, now=now)
            await db.execute(
                "INSERT INTO subscriptions (subscription_id, kind, user_id, tier, status, created_at,"
                " updated_at) VALUES (?, 'grant', ?, ?, 'active', ?, ?)",
                (token.subscription_id, user_id, tier, now, now),
            )
            await self._insert_token(db, token, user_id=user_id, subscription_id=token.subscription_id)
            await self._audit(db, audit, now=now)
        return user_id

    async def set_subscription_tier(self, subscription_id: str, tier: str, *, now: int,
                                    audit: AuditEntry) -> None:
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE subscriptions SET tier = ?, updated_at = ? WHERE subscription_id = ?",
                (tier, now, subscription_id),
            )
            if cursor.rowcount != 1:
                raise NotFoundError(f"no subscription {subscription_id}")
            await self._audit(db, audit, now=now)

    # ---- tokens ----------------------------------------------------------------------------

    async def get_token(self, token_id: str) -> TokenRow | None:
        rows = await self._read.execute_fetchall(_TOKEN_ROW_SQL + " WHERE t.token_id = ?", (token_id,))
        for row in rows:
            return TokenRow(*row)
        return None

    async def list_tokens(self, email: str | None = None) -> list[TokenRow]:
        if email is None:
            rows = await self._read.execute_fetchall(_TOKEN_ROW_SQL + " ORDER BY t.created_at, t.token_id")
        else:
            rows = await self._read.execute_fetchall(
                _TOKEN_ROW_SQL + " WHERE c.email = ? ORDER BY t.created_at, t.token_id", (email,)
            )
        return [TokenRow(*row) for row in rows]

    async def revoke_token(self, token_id: str, reason: str, *, now: int, audit: AuditEntry) -> bool:
        """Revoke one token; False when it was already revoked.

        Raises:
            NotFoundError: there is no such token.
        """
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(
                "SELECT revoked_at FROM tokens WHERE token_id = ?", (token_id,)
            ))
            if not rows:
                raise NotFoundError(f"no token {token_id}")
            if rows[0][0] is not None:
                return False
            await db.execute(
                "UPDATE tokens SET revoked_at = ?, revoked_reason = ? WHERE token_id = ?",
                (now, reason, token_id),
            )
            await self._audit(db, audit, now=now)
            return True

    async def rotate_token(self, old_token_id: str, new: NewToken, *, now: int, audit: AuditEntry) -> None:
        """Replace a live token by `new` (same owner and entitlement) in one transaction.

        Raises:
            NotFoundError: no live token `old_token_id`.
        """
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE tokens SET revoked_at = ?, revoked_reason = 'rotated', replaced_by = ?"
                " WHERE token_id = ? AND revoked_at IS NULL AND user_id = ? AND subscription_id = ?",
                (now, new.token_id, old_token_id, new.user_id, new.subscription_id),
            )
            if cursor.rowcount != 1:
                raise NotFoundError(f"no live token {old_token_id}")
            await self._insert_token(db, new, user_id=new.user_id, subscription_id=new.subscription_id)
            await self._audit(db, audit, now=now)

    async def insert_token(self, token: NewToken, *, now: int, audit: AuditEntry) -> None:
        async with self.transaction() as db:
            await self._insert_token(db, token, user_id=token.user_id, subscription_id=token.subscription_id)
            await self._audit(db, audit, now=now)

    async def _insert_token(self, db: aiosqlite.Connection, token: NewToken, *, user_id: str,
                            subscription_id: str) -> None:
        await db.execute(
            "INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token.token_id, user_id, subscription_id, token.token_hash, token.created_at, token.expires_at),
        )

    # ---- audit -----------------------------------------------------------------------------

    async def _audit(self, db: aiosqlite.Connection, entry: AuditEntry, *, now: int) -> None:
        await db.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (now, entry.actor, entry.action, entry.subject, entry.detail),
        )

    async def audit_entries(self, subject: str | None = None) -> list[dict[str, object]]:
        sql = "SELECT at, actor, action, subject, detail FROM audit_log"
        params: Sequence[object] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            params = (subject,)
        rows = await self._read.execute_fetchall(sql + " ORDER BY id", params)
        keys = ("at", "actor", "action", "subject", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]


async def _connect(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the SQLite database at {path}: {exc}") from None
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {synchronous}")
        await conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        await conn.close()
        raise StoreError(f"cannot use the SQLite database at {path}: {exc}") from None
    return conn


def _token_state(row: Sequence[object]) -> TokenState:
    values = list(row)
    values[10] = bool(values[10])
    return TokenState(*values)  # type: ignore[arg-type]


def dumps(detail: dict[str, object]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))
