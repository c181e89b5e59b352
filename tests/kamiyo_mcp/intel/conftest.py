"""Fixtures of the intel tests: the shared data set ingested once, a fresh store, local HTTP servers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kamiyo_mcp.intel.ingest import ingest_sources
from kamiyo_mcp.intel.search_spec import SearchSpec
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.intel.store_reads import StoredIncident

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO / "tests" / "data" / "exploits"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "exploits.jsonl").is_file():
        pytest.fail(f"the incident data set is missing at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def loaded_db(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A SQLite file holding the whole shared data set, normalized view plus raw sources."""
    path = tmp_path_factory.mktemp("intel") / "kamiyo.db"

    async def load() -> None:
        store = await IntelStore.open(path)
        try:
            await ingest_sources(store, [str(shared_dir)])
        finally:
            await store.close()

    asyncio.run(load())
    return path


@pytest.fixture
async def store(loaded_db: Path) -> AsyncIterator[IntelStore]:
    """The loaded store (read-only use: tests that write take ``empty_store``)."""
    s = await IntelStore.open(loaded_db)
    yield s
    await s.close()


@pytest.fixture
async def empty_store(tmp_path: Path) -> AsyncIterator[IntelStore]:
    s = await IntelStore.open(tmp_path / "kamiyo.db")
    yield s
    await s.close()


# (status, content type, body) or, with response headers, (status, content type, body, headers).
Route = Callable[[str, dict[str, list[str]]], tuple[Any, ...]]


class _RoutedServer(ThreadingHTTPServer):
    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.seen: list[str] = []
        self.headers_seen: list[dict[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    server: _RoutedServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        self.server.seen.append(self.path)
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        status, ctype, body, *extra = self.server.route(parts.path, parse_qs(parts.query))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra[0] if extra else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalServer:
    """A real HTTP server on 127.0.0.1 answering through ``route``; ``seen`` records request paths."""

    def __init__(self, route: Route) -> None:
        self._server = _RoutedServer(route)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[str]:
        return self._server.seen

    @property
    def headers_seen(self) -> list[dict[str, str]]:
        """The request headers of each request, lower-case names."""
        return self._server.headers_seen

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def local_server() -> Iterator[Callable[[Route], LocalServer]]:
    servers: list[LocalServer] = []

    def start(route: Route) -> LocalServer:
        server = LocalServer(route).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def json_body(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(value).encode()


async def canonical_reports(store: IntelStore) -> tuple[int, list[StoredIncident]]:
    """``(total, every incident's canonical report)``, newest first."""
    total, ids = await store.search_ids(SearchSpec(), limit=100_000)
    rows = await store.search_rows(ids)
    return total, [rows[i] for i in ids]
