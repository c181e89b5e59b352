"""SQL of scheduled jobs: a lease per job so one process at a time runs it, and its last result.

`JobsSQL` is mixed into the store class. Every change runs in the store's write transaction, which
serializes writers across processes (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so
"read the row, decide, write it" cannot interleave with another process doing the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.store.connection import Row, SQLMixin

_COLUMNS = "name, holder, lease_expires_at, last_started_at, last_finished_at, last_result"


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    holder: str | None
    lease_expires_at: int
    last_started_at: int | None
    last_finished_at: int | None
    last_result: str | None  # JSON summary of the last finished run

    def held(self, now: int) -> bool:
        return self.holder is not None and self.lease_expires_at > now


class JobsSQL(SQLMixin):
    """Leases and results of scheduled jobs (mixed into the store class)."""

    async def start_job(self, name: str, holder: str, *, now: int, lease_seconds: int,
                        started_before: int | None = None) -> bool:
        """Take job `name`'s lease for `holder` and record the start; False when another holder has it,
        or (with `started_before`) when the job last started at or after that time (it is not due)."""
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(f"SELECT {_COLUMNS} FROM scheduled_jobs WHERE name = ?", (name,)))
            if rows:
                state = _state(rows[0])
                if state.held(now) and state.holder != holder:
                    return False
                if started_before is not None and state.last_started_at is not None \
                        and state.last_started_at >= started_before:
                    return False
                await db.execute(
                    "UPDATE scheduled_jobs SET holder = ?, lease_expires_at = ?, last_started_at = ? WHERE name = ?",
                    (holder, now + lease_seconds, now, name))
            else:
                await db.execute(
                    "INSERT INTO scheduled_jobs (name, holder, lease_expires_at, last_started_at) VALUES (?, ?, ?, ?)",
                    (name, holder, now + lease_seconds, now))
            return True

    async def renew_job(self, name: str, holder: str, *, now: int, lease_seconds: int) -> bool:
        """Extend `holder`'s lease; False when it has lost it (expired and taken by another)."""
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE scheduled_jobs SET lease_expires_at = ? WHERE name = ? AND holder = ?",
                (now + lease_seconds, name, holder))
            return bool(cursor.rowcount == 1)

    async def finish_job(self, name: str, holder: str, *, now: int, result: str) -> None:
        """Record the run's result and release the lease (only if `holder` still has it)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE scheduled_jobs SET holder = NULL, lease_expires_at = 0, last_finished_at = ?,"
                " last_result = ? WHERE name = ? AND holder = ?", (now, result, name, holder))

    async def job_state(self, name: str) -> JobState | None:
        rows = list(await self._read.execute_fetchall(
            f"SELECT {_COLUMNS} FROM scheduled_jobs WHERE name = ?", (name,)))
        return _state(rows[0]) if rows else None


def _state(row: Row) -> JobState:
    name, holder, expires, started, finished, result = row
    return JobState(str(name), None if holder is None else str(holder), int(str(expires)),
                    None if started is None else int(str(started)), None if finished is None else int(str(finished)),
                    None if result is None else str(result))
