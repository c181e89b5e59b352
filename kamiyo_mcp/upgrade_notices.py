"""Waiting for upgrade links to complete, and telling the clients that elicited them.

`UpgradeNotices` is one background task per process that watches the store for completed links
(cross-process: any process may receive the webhook), wakes the calls waiting for them and sends
`notifications/elicitation/complete` to the sessions whose elicitation named the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from mcp.server.session import ServerSession

from billing.background import in_background, sleep_until_woken
from billing.errors import StoreError
from billing.store import Store
from billing.upgrade import IssuedLink

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
WAIT_SECONDS = 20.0


@dataclass(slots=True)
class _Watch:
    expires_at: float
    sessions: list[ServerSession] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class UpgradeNotices:
    """Waits for upgrade links to complete and tells the clients that elicited them."""

    def __init__(self, store: Callable[[], Store], *, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._poll = poll_seconds
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def now(self) -> float:
        return self._clock()

    def watch(self, link: IssuedLink, session: ServerSession | None = None) -> None:
        """Follow `link` until it completes or expires; then notify `session` (an elicitation's client)."""
        watch = self._watches.setdefault(link.link_id, _Watch(float(link.expires_at)))
        if session is not None and session not in watch.sessions:
            watch.sessions.append(session)
        self._wake.set()

    async def wait(self, link_id: str, expires_at: int, seconds: float = WAIT_SECONDS) -> bool:
        """Wait up to `seconds` for the link's webhook; True when it has landed."""
        watch = self._watches.setdefault(link_id, _Watch(float(expires_at)))
        self._wake.set()
        waiting = asyncio.ensure_future(watch.done.wait())
        try:
            # asyncio.wait, not wait_for/timeout: on 3.11 those can swallow the caller's cancellation.
            await asyncio.wait([waiting], timeout=seconds)
        finally:
            waiting.cancel()
        return watch.done.is_set()

    async def check(self) -> None:
        """One look at the store: wake the waiters and notify the clients of every completed link."""
        now = self._clock()
        for link_id, watch in list(self._watches.items()):
            if watch.expires_at < now and not watch.done.is_set():
                del self._watches[link_id]
        pending = [link_id for link_id, watch in self._watches.items() if not watch.done.is_set()]
        if not pending:
            return
        for link_id in await self._store().completed_upgrade_links(pending):
            watch = self._watches.pop(link_id)
            watch.done.set()
            for session in watch.sessions:
                try:
                    await session.send_elicit_complete(link_id)
                except Exception:  # noqa: BLE001 - the client went away; nothing else to tell it
                    logger.info("upgrade %s completed; its client could not be told (disconnected)", link_id)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.check()
            except StoreError:
                logger.exception("upgrade notices: the store could not be read")
            await sleep_until_woken(self._wake, self._poll if self._watches else 3600.0)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[UpgradeNotices]:
        async with in_background(self.run, self._stop, "kamiyo-upgrade-notices"):
            yield self

    def _stop(self) -> None:
        self._stopping = True
        self._wake.set()
