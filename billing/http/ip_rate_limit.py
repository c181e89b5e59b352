"""A per-client fixed-window counter (one process): how many times an IP may fail per minute."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_TRACKED = 10_000


class PerIPLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, ip: str) -> int | None:
        """Count one hit; None if within the limit, else the seconds until the window resets."""
        now = int(self._clock())
        window = now - now % 60
        start, count = self._windows.get(ip, (window, 0))
        if start != window:
            start, count = window, 0
        if len(self._windows) >= MAX_TRACKED and ip not in self._windows:
            self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        self._windows[ip] = (start, count + 1)
        return None if count < self._per_minute else window + 60 - now
