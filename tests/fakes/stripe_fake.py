"""A fake Stripe API for tests: real HTTP on 127.0.0.1, requests checked against Stripe's spec.

Start it around a test and point the SDK at ``fake.base_url``::

    with run_fake_stripe() as fake:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.base_url}, ...)
        ...
        assert fake.requests[-1].params["mode"] == "subscription"

uvicorn runs in a background thread with its own event loop, so one fake serves sync and
async tests alike. What a request is answered with is decided in ``stripe_api.FakeStripe``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.stripe_api import FakeStripe, RecordedRequest

__all__ = ["FakeStripe", "FakeStripeServer", "RecordedRequest", "build_app", "run_fake_stripe"]


def build_app(fake: FakeStripe) -> Starlette:
    """The ASGI app serving ``fake`` on every path."""

    async def endpoint(request: Request) -> Response:
        form = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            form += parse_qsl((await request.body()).decode(), keep_blank_values=True)
        reply = fake.handle(request.method, request.url.path, form, dict(request.headers))
        while fake.holding(request.url.path):  # the request is applied; its answer waits (a test's "in flight")
            await asyncio.sleep(0.01)
        return Response(json.dumps(reply.body, indent=2), reply.status, reply.headers, media_type="application/json")

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


class _Server(uvicorn.Server):
    """uvicorn that tells the starting thread once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class FakeStripeServer:
    """Start/stop handle for a ``FakeStripe`` served on 127.0.0.1 at a free port.

    For fixtures that cannot use a ``with`` block (e.g. session scope with ``fake.reset()``
    between tests); ``run_fake_stripe`` is the usual way in.
    """

    def __init__(self, fake: FakeStripe | None = None, *, start_timeout: float = 10.0) -> None:
        self.fake = fake or FakeStripe()
        self._start_timeout = start_timeout
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeStripe:
        """Listen and serve; returns the fake with ``base_url`` set. Raises RuntimeError on timeout."""
        # Bound and listening before uvicorn runs, so the port is known and early clients queue.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.fake),
            lifespan="off",
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            date_header=False,  # the fake sends its own Date, from its clock
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-stripe", daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(self._start_timeout):
            self.stop()
            raise RuntimeError(f"fake Stripe did not start within {self._start_timeout}s")
        self.fake.base_url = f"http://127.0.0.1:{port}"
        return self.fake

    def stop(self) -> None:
        """Stop serving and wait (bounded) for the server thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self._start_timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None


@contextmanager
def run_fake_stripe(*, seed: bool = True, start_timeout: float = 10.0,
                    clock: Callable[[], float] = time.time) -> Iterator[FakeStripe]:
    """Serve a fresh ``FakeStripe`` on 127.0.0.1 (free port) for the ``with`` block."""
    server = FakeStripeServer(FakeStripe(seed=seed, clock=clock), start_timeout=start_timeout)
    fake = server.start()
    try:
        yield fake
    finally:
        server.stop()
