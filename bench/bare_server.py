"""The baseline for bench_core.py: the same tool over the same transport, with no authorization.

    python bench/bare_server.py DATABASE_PATH PORT

`get_account_status` does the same work as the product's tool (it reads the caller's account
from the store), but no bearer check and no gate run in front of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.routing import Mount

from kamiyo_mcp.http.bearer import parse_bearer
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings


def main() -> None:
    database, port = sys.argv[1], int(sys.argv[2])
    runtime = Runtime(load_settings({**os.environ, "KAMIYO_DATABASE_URL": database, "KAMIYO_LOG_LEVEL": "WARNING"}))
    server = MCPServer("bare", log_level="WARNING")

    @server.tool()
    async def get_account_status(ctx: Context) -> dict[str, Any]:
        """Account status without authorization."""
        token = parse_bearer(ctx.request_context.request.headers.get("authorization"))  # type: ignore[union-attr]
        return await runtime.authority.account_status(token or "")

    mcp_app = server.streamable_http_app()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        async with runtime.opened(), server.session_manager.run():
            yield

    app = Starlette(routes=[Mount("/", app=mcp_app)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
