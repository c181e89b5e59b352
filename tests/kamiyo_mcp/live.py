"""The real app (`create_app`) on a loopback port in this process, on a clock the test moves."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import uvicorn

from kamiyo_mcp.app import create_app
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.kamiyo_mcp.gate_support import Clock
from tests.support import base_env


@dataclass
class Live:
    url: str
    runtime: Runtime
    clock: Clock


@asynccontextmanager
async def live_app(db: Path, **env: str) -> AsyncIterator[Live]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        clock = Clock()
        app = create_app(load_settings(base_env(db, KAMIYO_PUBLIC_URL=url, **env)), clock=clock)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            with anyio.fail_after(10):
                while not server.started:
                    await asyncio.sleep(0.01)  # polling uvicorn's start flag, bounded by fail_after
            yield Live(url, app.state.runtime, clock)
        finally:
            server.should_exit = True
            with anyio.fail_after(10):
                await task
