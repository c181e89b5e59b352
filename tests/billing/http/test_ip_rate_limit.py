"""The per-IP fixed-window limiter: N hits a minute per address, reset on the next minute."""

from __future__ import annotations

from billing.http.ip_rate_limit import PerIPLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_hit_after_the_limit_is_refused_with_the_seconds_to_the_next_minute() -> None:
    clock = Clock(1_800_000_010)
    limiter = PerIPLimiter(3, clock=clock)

    assert [limiter.hit("198.51.100.1") for _ in range(3)] == [None, None, None]
    assert limiter.hit("198.51.100.1") == 50
    assert limiter.hit("198.51.100.2") is None


def test_a_new_minute_starts_a_new_window() -> None:
    clock = Clock(1_800_000_059)
    limiter = PerIPLimiter(1, clock=clock)
    limiter.hit("198.51.100.1")

    clock.now += 1

    assert limiter.hit("198.51.100.1") is None
