"""Bulk reads from Stripe: paced below its rate limit, patient with 429, and dated in Stripe's clock.

Stripe allows 25 requests per second in test mode (100 in live mode) and answers more with 429
and `Retry-After`. A reconciliation reads many pages in a row, so its reads go through a `Pacer`:
requests start at most `rate` per second, and a 429 waits for `Retry-After` (or a backoff) before
the same request is sent again, a bounded number of times.

`observed_at` dates a read in Stripe's own clock, so no clock skew between us and Stripe can make an
older read look newer than an event: the read reflects every event created (Stripe's whole seconds)
before that second. A response carries Stripe's `Date` (whole seconds, taken after the object was
read); the object was read after the request left us, so no earlier than `Date - (received - sent)`;
an event created in an earlier whole second than that happened before the read.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

DEFAULT_RATE = 20.0  # requests per second: below Stripe's test-mode limit of 25
MAX_RATE_LIMITED_ATTEMPTS = 6
BACKOFF_CAP_SECONDS = 30.0
# Without a Date header (a proxy dropped it) our own clock is used, less this much for skew.
CLOCK_SKEW_MARGIN_SECONDS = 5


class RateLimited(Exception):
    """Raised by a paced call's function when Stripe answered 429; `retry_after` is its advice (seconds)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("rate limited by Stripe")
        self.retry_after = retry_after


class Pacer:
    """Starts calls at most `rate` per second; retries a call that raised `RateLimited`."""

    def __init__(self, rate: float = DEFAULT_RATE, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self._interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_start = 0.0
        self._lock = asyncio.Lock()
        self.calls = 0  # requests sent, retries included
        self.rate_limited = 0  # 429 answers received

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run `request()` when its turn comes; on `RateLimited`, wait as told and send it again.

        Raises:
            RateLimited: still rate limited after MAX_RATE_LIMITED_ATTEMPTS attempts.
        """
        for attempt in range(1, MAX_RATE_LIMITED_ATTEMPTS + 1):
            await self._turn()
            try:
                return await request()
            except RateLimited as exc:
                self.rate_limited += 1
                if attempt == MAX_RATE_LIMITED_ATTEMPTS:
                    raise
                await self._hold(retry_delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    async def _turn(self) -> None:
        async with self._lock:
            now = self._monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
            self.calls += 1
        if start > now:
            await self._sleep(start - now)

    async def _hold(self, seconds: float) -> None:
        """Nobody sharing this pacer starts a request for `seconds`: the limit is the account's."""
        async with self._lock:
            self._next_start = max(self._next_start, self._monotonic() + seconds)


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """How long to wait after the `attempt`-th 429: Stripe's `Retry-After` if given, else 1, 2, 4 ... s."""
    backoff = min(BACKOFF_CAP_SECONDS, 2.0 ** (attempt - 1))
    return max(retry_after, 0.0) if retry_after is not None else backoff


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """A `Retry-After` header in seconds (delta-seconds form), or None."""
    value = _header(headers, "retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def observed_at(headers: Mapping[str, str] | None, sent: float, received: float, *,
                wall_clock: Callable[[], float] = time.time) -> int:
    """The Stripe second before which every change is reflected in a response (see the module doc).

    `sent` and `received` are monotonic times taken around the whole call, retries included.
    """
    date = _header(headers, "date")
    latency = max(received - sent, 0.0)
    if date:
        try:
            stripe_now = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            stripe_now = None
        if stripe_now is not None:
            return math.floor(stripe_now - latency)
    return math.floor(wall_clock() - latency - CLOCK_SKEW_MARGIN_SECONDS)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value
