"""Quota windows: the minute and the day a call is counted in. Pure, no I/O.

The one place the window arithmetic lives: the admit-and-count statement is fed these starts,
refusals name these resets, and the account status reads a stored count only while its window
is the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Windows:
    """The windows `now` falls in (UTC minute and UTC day, as unix seconds)."""

    minute: int
    day: int

    @property
    def minute_resets_at(self) -> int:
        return self.minute + MINUTE

    @property
    def day_resets_at(self) -> int:
        return self.day + DAY

    def minute_used(self, start: int | None, count: int) -> int:
        """A stored minute count, or 0 when it belongs to an earlier minute."""
        return count if start == self.minute else 0

    def day_used(self, start: int | None, count: int) -> int:
        """A stored day count, or 0 when it belongs to an earlier day."""
        return count if start == self.day else 0


def windows(now: int) -> Windows:
    return Windows(minute=now - now % MINUTE, day=now - now % DAY)
