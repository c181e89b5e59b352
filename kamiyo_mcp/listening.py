"""Can `serve` listen where it was asked to? Checked before anything starts, so the answer is one line.

Without it a taken port or a host that is not this machine's surfaced as uvicorn's own exit code 3
after the whole application had started.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListenProblem:
    exit_code: int  # 2: the --host is bad usage; 1: the address is fine but cannot be had now
    message: str


def listen_problem(host: str, port: int) -> ListenProblem | None:
    """Why listening on `host`:`port` would fail, or None when a socket binds there now."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return ListenProblem(2, f"--host {host!r} is not a name or address of this machine ({exc.strerror})")
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return ListenProblem(2, f"--host {host!r} is not an address of this machine ({exc.strerror})")
            return ListenProblem(1, f"cannot listen on {host}:{port}: {exc.strerror}")
    return None
