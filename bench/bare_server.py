"""The baseline for the core benchmarks: the same tools, over the same transport, with no authorization.

    KAMIYO_BENCH_TOKEN=... python bench/bare_server.py DATABASE_PATH PORT

The product's own tool modules are registered on a plain `MCPServer`; instead of the bearer layer
and the gate, a trivial interceptor hands every call one fixed grant (the token's, decided once at
start-up), which is all the tool bodies read. So the two servers differ by exactly the per-call
authorization: verifying the bearer, one store trip, the gate. The token comes in the environment,
not on the command line (where `ps` would show it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext  # noqa: E402
from mcp.server.extension import Extension  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp_types import CallToolRequestParams  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from billing.access import Grant  # noqa: E402
from kamiyo_mcp import heap  # noqa: E402
from kamiyo_mcp.gate import running_with  # noqa: E402
from kamiyo_mcp.runtime import Runtime  # noqa: E402
from kamiyo_mcp.settings import load_settings  # noqa: E402
from kamiyo_mcp.tools import account, intel  # noqa: E402


class FixedGrant(Extension):
    """Every call runs with the same grant: no bearer, no store trip, no decision."""

    identifier = "bench.kamiyo/fixed-grant"

    def __init__(self) -> None:
        self.grant: Grant | None = None

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        assert self.grant is not None
        with running_with(self.grant):
            return await call_next(ctx)


def main() -> None:
    database, port, token = sys.argv[1], int(sys.argv[2]), os.environ["KAMIYO_BENCH_TOKEN"]
    runtime = Runtime(load_settings({**os.environ, "KAMIYO_DATABASE_URL": database, "KAMIYO_LOG_LEVEL": "WARNING"}))
    fixed = FixedGrant()
    server: MCPServer[Any] = MCPServer("bare", log_level="WARNING", extensions=[fixed])
    account.register(server, runtime)
    intel.register(server, runtime)
    mcp_app = server.streamable_http_app()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.opened(), server.session_manager.run():
            decision = await runtime.authority.authorize(token, "get_account_status")
            assert isinstance(decision, Grant), decision
            fixed.grant = decision
            heap.settle()  # the collector settings of `kamiyo-mcp serve`
            yield

    app = Starlette(routes=[Mount("/", app=mcp_app)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
