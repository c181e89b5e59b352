"""The background loops of the authority's senders (mails, meter events): wait, start, stop.

    await sleep_until_woken(wake, seconds)                 # a pass is due, or someone called wake.set()
    async with in_background(sender.run, sender.stop, "name"): ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


async def sleep_until_woken(wake: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `wake` is set meanwhile (it is cleared first)."""
    wake.clear()
    # A timer sets the event: no asyncio.timeout/wait_for here (on 3.11 they can swallow a cancellation).
    timer = asyncio.get_running_loop().call_later(max(seconds, 0.01), wake.set)
    try:
        await wake.wait()
    finally:
        timer.cancel()


@contextlib.asynccontextmanager
async def in_background(run: Callable[[], Coroutine[Any, Any, None]], stop: Callable[[], None],
                        name: str) -> AsyncIterator[None]:
    """Run `run()` as a task for the block; on leaving, `stop()` it and cancel it, and wait for its end.

    Both the flag and the cancellation: on 3.11 a library's wait_for can swallow a cancellation that lands
    as its peer answers, and the loop must still end.
    """
    task = asyncio.create_task(run(), name=name)
    try:
        yield
    finally:
        stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
