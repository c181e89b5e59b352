"""One `kamiyo-mcp serve` loaded with the repository's incident data, and a token per tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import DATA, ServerProcess, base_env, cli


@pytest.fixture(scope="session")
def intel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = base_env(tmp_path_factory.mktemp("intel") / "kamiyo.db")
    loaded = cli(["ingest", str(DATA / "exploits")], env, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    process = ServerProcess(env).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def tier_tokens(intel_server: ServerProcess) -> dict[str, str]:
    tokens = {}
    for tier in ("personal", "team", "enterprise"):
        issued = cli(["token", "issue", "--email", f"{tier}@example.com", "--tier", tier], intel_server.env)
        assert issued.returncode == 0, issued.stderr
        tokens[tier] = issued.stdout.strip()
    return tokens
