"""One sqlite3 connection driven by its own thread: `await run(fn)` calls `fn(connection)` there.

The per-call path needs several statements (admit-and-count, then read the token's state) in one
trip to the database's thread: a trip costs more than the SQL. aiosqlite hands its thread only
single statements, so the call counter owns this small runner instead. Functions run one at a time,
in submission order; a driver error reaches the awaiting caller as `StoreError`. While no job is
queued or running (`idle`), the owner may run statements on the connection from the event loop's
thread itself (the call counter does, for a lone call).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

from billing.errors import StoreError

T = TypeVar("T")

_Job = tuple[asyncio.Future[Any], Callable[[sqlite3.Connection], Any]] | None


class SQLiteThread:
    """A connection in autocommit mode (`isolation_level=None`) owned by one worker thread."""

    def __init__(self, connection: sqlite3.Connection, name: str) -> None:
        self._connection = connection
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        self._closed = False
        self._in_flight = 0  # jobs queued or running (settled back on the event loop)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, path: Path, pragmas: list[str], *, name: str = "kamiyo-sqlite") -> SQLiteThread:
        """Connect to `path` in a worker thread and apply `pragmas` there.

        Raises:
            StoreError: the file cannot be opened or a pragma is refused.
        """

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            try:
                for pragma in pragmas:
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            connection = await asyncio.to_thread(connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use the SQLite database at {path}: {exc}") from None
        return cls(connection, name)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)`, run in the worker thread.

        Raises:
            StoreError: the runner is closed, or `fn` raised a `sqlite3.Error`.
        """
        return await self.submit(fn)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `fn(connection)` for the worker thread now (the runner stops being `idle` at once); the
        future settles on the loop, with `StoreError` if `fn` raised a `sqlite3.Error`.

        Raises:
            StoreError: the runner is closed.
        """
        if self._closed:
            raise StoreError("the SQLite connection is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._in_flight += 1
        self._jobs.put((future, fn))
        return future

    @property
    def idle(self) -> bool:
        """No job of this runner is queued or running: the caller may use `connection` on its own
        thread until it next calls `run` (a job whose caller was cancelled counts until it has run)."""
        return self._in_flight == 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection itself, for a caller that runs statements on its own thread between two jobs
        (see `sqlite_batch`): only while no job of its runs or waits here."""
        return self._connection

    async def close(self) -> None:
        """Finish queued work, close the connection and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._connection.close()
                return
            future, fn = job
            try:
                result = fn(self._connection)
            except sqlite3.Error as exc:
                _settle(future, self._job_done, error=StoreError(f"SQLite failed: {type(exc).__name__}: {exc}"))
            except BaseException as exc:  # delivered to the caller, who knows what it means
                _settle(future, self._job_done, error=exc)
            else:
                _settle(future, self._job_done, result=result)

    def _job_done(self) -> None:
        self._in_flight -= 1


def _settle(future: asyncio.Future[Any], done: Callable[[], None], *, result: Any = None,
            error: BaseException | None = None) -> None:
    """Hand a job's outcome to its loop, which first counts the job finished (`done`)."""

    def settle() -> None:
        done()
        if future.done():  # the caller was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
