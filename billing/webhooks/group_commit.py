"""How long a batch's leader waits for more deliveries before its transaction (group commit).

Every transaction of billing state ends in an fsync, which costs more than applying a few events.
Deliveries that arrive while one transaction commits form the next batch; but a batch that starts
the moment the previous one commits leaves out the senders whose answers just went out, and their
next deliveries wait for its fsync and form the batch after it: with four senders the batches
settle at two and two, or one and three, two fsyncs where one would do.

So, like PostgreSQL's `commit_delay`, a leader that finds fewer deliveries queued than were in
progress at once recently (the senders' concurrency) waits for the others, but never longer than
`max_wait` nor than half the last transaction's time (waiting longer than the fsync it saves
gains nothing). It starts as soon as the queue is full, and never waits when deliveries come one
at a time (a quiet endpoint, a replay, a recovery) or before a transaction has been timed.
"""

from __future__ import annotations

import asyncio
from collections import deque

MAX_WAIT_SECONDS = 0.002
HISTORY = 16  # batches over which the concurrency is the largest seen


class GroupCommit:
    def __init__(self, *, max_batch: int, max_wait: float = MAX_WAIT_SECONDS, history: int = HISTORY) -> None:
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._peaks: deque[int] = deque(maxlen=history)
        self._inside = 0  # deliveries between `entered` and `left`
        self._peak = 0  # the most at once since the last commit
        self._last_seconds = 0.0
        self._ready: asyncio.Future[None] | None = None
        self._target = 0

    def entered(self, queued: int) -> None:
        """A delivery joined the queue, which now holds `queued`; a waiting leader starts once it is full."""
        self._inside += 1
        self._peak = max(self._peak, self._inside)
        if self._ready is not None and queued >= self._target and not self._ready.done():
            self._ready.set_result(None)

    def left(self) -> None:
        """A delivery has its outcome."""
        self._inside -= 1

    async def gather(self, queued: int) -> None:
        """Wait (bounded) until the queue, holding `queued` now, holds as many as recently were in progress."""
        target = min(max(self._peaks, default=1), self._max_batch)
        wait = min(self._max_wait, self._last_seconds / 2)
        if queued >= target or wait <= 0:
            return
        loop = asyncio.get_running_loop()
        self._ready, self._target = loop.create_future(), target
        timer = loop.call_later(wait, _settle, self._ready)
        try:
            await self._ready
        finally:
            timer.cancel()
            self._ready = None

    def committed(self, seconds: float) -> None:
        """A batch's transaction ended after `seconds` (its fsync included)."""
        self._peaks.append(self._peak)
        self._peak = self._inside
        self._last_seconds = seconds


def _settle(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
