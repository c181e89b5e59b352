"""The PostgreSQL store: the same named operations as the SQLite store, shared by many processes.

Selected by a `postgresql://` database URL so several `kamiyo-mcp serve` processes (or hosts)
share one truth. One asyncpg pool serves everything:
- `_read` (`PgPoolReader`): point reads, each on a borrowed connection, outside any transaction;
- `transaction()`: one write transaction that first takes a cluster-wide advisory lock;
- `admit_call`: the admit-and-count upsert with the token's state, one autocommit statement per call.

Why write transactions serialize: the store's write logic (exactly-once webhooks checked inside
the transaction, event ordering by `last_event_created`, "find the customer by email, else insert
one") was written for SQLite's single writer (`BEGIN IMMEDIATE`). `pg_advisory_xact_lock` gives
PostgreSQL the same property across processes and hosts: one write transaction at a time, and
under READ COMMITTED every statement after the lock sees all that earlier writers committed. The
lock is released by COMMIT or ROLLBACK, so a crashed process cannot leave it held. Reads and call
counting do not take it: readers never block, and the counter's upsert is atomic on its own row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from billing.errors import StoreError
from billing.quota import Windows
from billing.store import migrations
from billing.store.billing_sql import BillingSQL
from billing.store.connection import Connection
from billing.store.core_sql import CoreSQL
from billing.store.customers_sql import CustomersSQL
from billing.store.delivery_sql import DeliverySQL
from billing.store.jobs_sql import JobsSQL
from billing.store.meter_sql import MeterSQL
from billing.store.oauth_grant_sql import OAuthGrantSQL
from billing.store.oauth_sql import OAuthSQL
from billing.store.outbox_sql import OutboxSQL
from billing.store.pg_call_counter import PgCallCounter
from billing.store.pg_connection import FAILURES, PgConnection, PgPoolReader, store_errors
from billing.store.reconcile_sql import ReconcileSQL
from billing.store.records import Admission
from billing.store.upgrade_sql import UpgradeSQL
from billing.tiers import DEFAULT_TIERS, TierTable

# Advisory lock keys (64-bit) no other application on the database is likely to use: "KAMIYOwr".
WRITE_LOCK_KEY = 0x4B414D49594F7772
CONNECT_TIMEOUT_S = 10
PING_TIMEOUT_S = 5
DEFAULT_POOL_MIN = 2
DEFAULT_POOL_MAX = 10


class PostgresStore(CoreSQL, BillingSQL, CustomersSQL, DeliverySQL, OutboxSQL, UpgradeSQL, MeterSQL,
                    ReconcileSQL, JobsSQL, OAuthSQL, OAuthGrantSQL):
    """Named async operations over one PostgreSQL database, through an asyncpg pool."""

    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, tiers: TierTable = DEFAULT_TIERS) -> None:
        self._pool = pool
        self._read = PgPoolReader(pool)
        self._calls = PgCallCounter(pool, tiers)
        # Writers of this process queue here rather than each holding a pooled connection while it
        # waits for the advisory lock, which would starve readers and the call counter.
        self._write_lock = asyncio.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, pool_min: int = DEFAULT_POOL_MIN, pool_max: int = DEFAULT_POOL_MAX,
                   tiers: TierTable = DEFAULT_TIERS) -> PostgresStore:
        """Connect a pool to the database at `url` and apply pending migrations; calls are admitted
        against `tiers`.

        Raises:
            StoreError: the database cannot be reached or refuses the connection.
        """
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min(pool_min, pool_max), max_size=pool_max, timeout=CONNECT_TIMEOUT_S,
                server_settings={"application_name": "kamiyo-mcp"},
            )
        except FAILURES as exc:
            # The URL may hold a password: name the failure, never the URL.
            raise StoreError(f"cannot connect to the PostgreSQL database: {type(exc).__name__}: {exc}") from None
        store = cls(pool, tiers)
        try:
            await migrations.apply(store.transaction, store.dialect, now=int(time.time()))
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> bool:
        """True when the database answers.

        Raises:
            StoreError: it does not (within a few seconds).
        """
        with store_errors():
            async with self._pool.acquire(timeout=PING_TIMEOUT_S) as conn:
                return bool(await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT_S) == 1)

    async def schema_version(self) -> int:
        rows = await self._read.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(list(rows)[0][0])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One write transaction, serialized with every other writer on the database."""
        # asyncpg's and the network's errors become StoreError; the caller's other errors pass through.
        with store_errors():
            async with self._write_lock, self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK_KEY)
                yield PgConnection(conn)

    # ---- the per-call path -----------------------------------------------------------------

    async def admit_call(self, token_hash: str, *, now: int, min_rank: int, call_id: str = "",
                         with_state: bool = True) -> Admission:
        """Admit and count one tool call (or not), and read its token's state, in one round trip (whatever
        `with_state` says: in the same statement it costs next to nothing); a metered call's meter event
        (identifier `call_id`) is written by the same statement."""
        return await self._calls.admit(token_hash, now=now, min_rank=min_rank, call_id=call_id)

    async def refund_call(self, subscription_id: str, counted_in: Windows, *, metered_call: str | None = None,
                          now: int = 0) -> None:
        """Give back one counted call that never reached its tool (while its windows are current); a
        metered one is not billed either (its meter event voided in the same transaction)."""
        if metered_call is not None:
            await self.refund_metered_call(subscription_id, counted_in, metered_call, now=now)
            return
        await self._calls.refund(subscription_id, counted_in)
