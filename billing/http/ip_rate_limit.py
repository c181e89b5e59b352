"""A per-client fixed-window counter (one process): how many times a client may do something per minute.

A client is its IPv4 address, or the /64 of its IPv6 address (one subscriber's block: a host can
take any address in it). The address is `request.client`, which is the peer unless
`KAMIYO_TRUSTED_PROXIES` lets a trusted proxy's X-Forwarded-For name the client (the app applies
it before any route runs).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from starlette.requests import Request

from billing.http.endpoint import Refusal

MAX_TRACKED = 10_000
IPV6_PREFIX = 64


def client_key(host: str) -> str:
    """The key a client is counted under: an IPv4 address (also when IPv4-mapped) or an IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class PerIPLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, ip: str) -> int | None:
        """Count one hit of the client at `ip`; None if within the limit, else the seconds until the window resets."""
        key = client_key(ip)
        now = int(self._clock())
        window = now - now % 60
        start, count = self._windows.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        if len(self._windows) >= MAX_TRACKED and key not in self._windows:
            self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        self._windows[key] = (start, count + 1)
        return None if count < self._per_minute else window + 60 - now

    def hit_request(self, request: Request) -> int | None:
        """`hit` for the client of `request`."""
        return self.hit(client_host(request))


def limit_or_refuse(limiter: PerIPLimiter, request: Request, what: str) -> None:
    """Count the request's client; over the limit, refuse with 429, `Retry-After` and `what` was too many.

    Raises:
        Refusal: 429 rate_limited.
    """
    retry_after = limiter.hit_request(request)
    if retry_after is not None:
        raise Refusal(429, "rate_limited", f"too many {what} from this address; retry in {retry_after} s",
                      headers={"Retry-After": str(retry_after)})
