"""`kamiyo-mcp stdio`: the same tools over stdio for Claude Desktop, token from `KAMIYO_TOKEN`.

Nothing but the protocol goes to stdout; logs go to stderr. The token is authorized against the
store on every call, exactly as over HTTP, so a revocation is in force on the next call.
"""

from __future__ import annotations

import logging

from billing.errors import InvalidTokenError
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings

logger = logging.getLogger(__name__)

MISSING_TOKEN = (
    "KAMIYO_TOKEN is not set. Add your token to this server's \"env\" in claude_desktop_config.json "
    "(see claude_desktop_config.example.json) and restart Claude Desktop."
)


async def run_stdio(settings: Settings) -> None:
    runtime = Runtime(settings)
    token = settings.kamiyo_token
    server = build_server(runtime, lambda ctx: token, missing_token_hint=MISSING_TOKEN)
    async with runtime.opened():
        if token is None:
            logger.warning("KAMIYO_TOKEN is not set: every tool call will be refused")
        else:
            try:
                await runtime.authority.authenticate(token)
            except InvalidTokenError as exc:
                logger.warning("KAMIYO_TOKEN does not authenticate (%s): tool calls will be refused", exc.reason)
        await server.run_stdio_async()
