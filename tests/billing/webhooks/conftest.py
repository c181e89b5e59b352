"""Fixtures of the webhook tests: a real store and runtime, the endpoint in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from billing.http.webhooks import webhook_routes
from billing.webhooks.registry import HandlerRegistry, default_registry
from kamiyo_mcp.app import create_app
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.webhooks.webhook_support import LiveApp, Webhooks, environment


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environment(tmp_path))


@pytest.fixture
def registry() -> HandlerRegistry:
    return default_registry()


@pytest.fixture
async def webhooks(settings: Settings, registry: HandlerRegistry) -> AsyncIterator[Webhooks]:
    async with Runtime(settings).opened() as runtime:
        app = Starlette(routes=webhook_routes(lambda: runtime.store, settings.billing, registry=registry))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Webhooks(client, runtime, settings.database_path)


@pytest.fixture
def settings_env() -> dict[str, str]:
    """Extra settings for `live_app` (a test module may override it)."""
    return {}


@pytest.fixture
async def live_app(tmp_path: Path, settings_env: dict[str, str]) -> AsyncIterator[LiveApp]:
    """The real app (`create_app`, `/mcp` and its lifespan) with the webhook route, on a loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = load_settings(environment(tmp_path, KAMIYO_PUBLIC_URL=url, **settings_env))
        app = create_app(settings)
        runtime: Runtime = app.state.runtime
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            with anyio.fail_after(10):
                while not server.started:
                    await asyncio.sleep(0.01)  # polling uvicorn's start flag, bounded by fail_after
            yield LiveApp(url, runtime)
        finally:
            server.should_exit = True
            with anyio.fail_after(10):
                await task
