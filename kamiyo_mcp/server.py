"""The MCP server: every tool registered behind the one authorization gate."""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.extension import Extension
from mcp.server.request_state import RequestStateSecurity

from kamiyo_mcp import __version__
from kamiyo_mcp.catalog import CatalogedServer, ToolCatalog
from kamiyo_mcp.gate import AuthorizationGate, CallerSource, ToolCallObserver
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.secret_file import resolve_jwt_secret
from kamiyo_mcp.tools import account, intel
from kamiyo_mcp.upgrade_prompt import UpgradeOffers

INSTRUCTIONS = (
    "KAMIYO answers questions about crypto exploits from real incident data (DeFiLlama, BlockSec, "
    "DeFiHackLabs): search incidents, assess a DeFi protocol's risk, screen a wallet against known "
    "incident addresses, and show the account's tier and remaining quota. Each call counts toward the "
    "subscription's quota; a refused call says why and how to proceed."
)


def build_server(runtime: Runtime, caller: CallerSource, *, missing_token_hint: str,
                 on_tool_call: ToolCallObserver | None = None,
                 inner_extensions: Sequence[Extension] = (),
                 upgrades: UpgradeOffers | None = None) -> CatalogedServer:
    """A new MCP server whose tools read `runtime` (opened by the caller) on every call.

    Every tool it registers lands in `server.catalog`, which the gate guards: none runs unauthorized.
    `inner_extensions` wrap a tool call inside the gate: they see only calls it admitted. `upgrades`
    turns tier and quota refusals into upgrade links (and URL elicitations). The multi-round-trip
    `requestState` (2026-07-28) is sealed under a key derived from the server's JWT secret, so any
    process of a deployment accepts another's.
    """
    catalog = ToolCatalog()
    server = CatalogedServer(
        "kamiyo",
        title="KAMIYO exploit intelligence",
        instructions=INSTRUCTIONS,
        website_url=runtime.settings.public_url,
        version=__version__,
        log_level=runtime.settings.log_level,
        request_state_security=RequestStateSecurity(keys=[resolve_jwt_secret(runtime.settings)]),
        extensions=[
            AuthorizationGate(lambda: runtime.authority, caller, catalog, missing_token_hint=missing_token_hint,
                              on_call=on_tool_call, upgrades=upgrades),
            *inner_extensions,
        ],
        catalog=catalog,
    )
    account.register(server, runtime)
    intel.register(server, runtime)
    return server
