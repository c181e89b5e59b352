"""Shared fixtures: settings for a store in tmp_path, real server processes, a real SMTP inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.http.delivery_harness import Inbox
from tests.support import ServerProcess, base_env


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "kamiyo.db"


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return load_settings(base_env(db_path))


@pytest.fixture
def server_factory() -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def start(self) -> ServerProcess:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        server.stop()


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a loopback port, for the mails the server sends."""
    box = Inbox().start()
    try:
        yield box
    finally:
        box.stop()
