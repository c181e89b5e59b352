"""Who may read an operator endpoint (`/metrics`): the holder of its token, else a local scraper only.

With `KAMIYO_METRICS_TOKEN` set, every request needs `Authorization: Bearer <that token>`, from
anywhere (401 otherwise). Without it, only a local scraper is answered (403 otherwise): the peer
is a loopback address (after `KAMIYO_TRUSTED_PROXIES`), it came through no proxy (a proxy on the
same host would make every visitor local), and its `Host` is a loopback name or one of this
server's own (a page in a local browser that rebound its name to 127.0.0.1 is refused).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from billing.http.bearer_header import parse_bearer
from billing.http.errors import error_response
from kamiyo_mcp.settings import LOOPBACK_HOSTS, is_loopback

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class OperatorAccess:
    def __init__(self, *, token: str | None, own_hosts: Iterable[str], variable: str = "KAMIYO_METRICS_TOKEN") -> None:
        self._token = token.encode() if token else None
        self._hosts = {host.lower() for host in (*LOOPBACK_HOSTS, *own_hosts)}
        self._variable = variable

    def refusal(self, request: Request) -> Response | None:
        """None when `request` may be answered, else the answer that refuses it."""
        if self._token is not None:
            given = parse_bearer(request.headers.get("authorization"))
            if given is not None and hmac.compare_digest(given.encode(), self._token):
                return None
            return error_response(401, "invalid_token", "send the operator token as 'Authorization: Bearer <token>'",
                                  headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        peer = request.client.host if request.client else ""
        proxied = any(name in request.headers for name in FORWARDING_HEADERS)
        if is_loopback(peer) and not proxied and _host_name(request.headers.get("host", "")) in self._hosts:
            return None
        return error_response(403, "forbidden", f"this endpoint answers local scrapers only; set {self._variable} "
                              "and send it as 'Authorization: Bearer <token>' to read it from elsewhere")


def _host_name(host: str) -> str:
    """The name in a Host header, without its port (`[::1]:8000` → `::1`)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
