"""`kamiyo-mcp stdio`: the same tools over stdio for Claude Desktop, token from `KAMIYO_TOKEN`.

Nothing but the protocol goes to stdout; logs go to stderr. The token is verified once, at
start-up (signature and claims; its hash is what the calls carry), and every tool call is admitted
against the store exactly as over HTTP, in one trip: a revocation is in force on the next call.
"""

from __future__ import annotations

import logging

from billing.access import Denial
from billing.errors import InvalidTokenError
from billing.http.checkout import StripeGatewaySlot
from kamiyo_mcp.caller import Caller
from kamiyo_mcp.metering import MeteringWiring
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
    caller: Caller | Denial | None = None
    # Refusals carry upgrade links to the public server's pages, as over HTTP.
    offers = MeteringWiring(runtime, StripeGatewaySlot(settings.billing)).offers
    # Read when a call arrives, so it sees the caller set once the runtime is open.
    server = build_server(runtime, lambda ctx: caller, missing_token_hint=MISSING_TOKEN, upgrades=offers)
    async with runtime.opened(), offers.notices.running():
        caller = await process_caller(runtime, settings.kamiyo_token)
        await server.run_stdio_async()


async def process_caller(runtime: Runtime, token: str | None) -> Caller | Denial | None:
    """The caller every tool call of this process carries: `token` verified once (or why it cannot be)."""
    if token is None:
        logger.warning("KAMIYO_TOKEN is not set: every tool call will be refused")
        return None
    authority = runtime.authority
    try:
        credential = authority.verify(token)
    except InvalidTokenError as exc:
        logger.warning("KAMIYO_TOKEN does not verify (%s): tool calls will be refused", exc.reason)
        return authority.unverified(exc)
    try:
        await authority.identify(credential)
    except InvalidTokenError as exc:  # told now; each call is still decided by the store
        logger.warning("KAMIYO_TOKEN is not usable (%s): tool calls will be refused until it is", exc.reason)
    return Caller(credential)

