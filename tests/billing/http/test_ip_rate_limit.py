"""The per-IP fixed-window limiter: N hits a minute per address, reset on the next minute."""

from __future__ import annotations

from billing.http.ip_rate_limit import PerIPLimiter, client_key


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


def test_an_ipv6_client_is_limited_per_64_and_a_mapped_ipv4_as_its_ipv4() -> None:
    limiter = PerIPLimiter(1, clock=Clock(1_800_000_010))

    assert limiter.hit("2001:db8:1:2::1") is None
    assert limiter.hit("2001:db8:1:2:ffff:ffff:ffff:ffff") is not None  # the same /64: one customer's block
    assert limiter.hit("2001:db8:1:3::1") is None  # the next /64 is someone else
    assert limiter.hit("198.51.100.1") is None
    assert limiter.hit("::ffff:198.51.100.1") is not None  # the same IPv4 client


def test_the_client_key_is_the_ipv4_address_or_the_ipv6_64() -> None:
    assert client_key("198.51.100.1") == "198.51.100.1"
    assert client_key("2001:DB8:1:2::abcd") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert client_key("unknown") == "unknown"
