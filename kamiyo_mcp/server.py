"""The MCP server: every tool registered behind the one authorization gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server.extension import Extension
from mcp.server.mcpserver import Context
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptResult, InputRequiredResult

from kamiyo_mcp import __version__
from kamiyo_mcp.catalog import CatalogedServer, ToolCatalog
from kamiyo_mcp.gate import AuthorizationGate, CallerSource, MessageGate, ToolCallObserver
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.secret_file import resolve_jwt_secret
from kamiyo_mcp.tools import account, incidents, intel, prompts
from kamiyo_mcp.upgrade_prompt import UpgradeOffers

INSTRUCTIONS = (
    "KAMIYO answers questions about crypto exploits from real incident data (DeFiLlama, BlockSec, "
    "DeFiHackLabs): search incidents, assess a DeFi protocol's risk, screen a wallet against known "
    "incident addresses, and show the account's tier and remaining quota. Each incident is also a resource "
    "(kamiyo://incidents/{id}), and two prompts guide a due-diligence review of a protocol and the screening "
    "of a wallet. Each call, resource read or prompt counts toward the subscription's quota; a refused one "
    "says why and how to proceed."
)


class KamiyoServer(CatalogedServer):
    """The server, answering a prompt it does not have as the caller's mistake (-32602, as an unknown resource).

    mcp 2.3.0 raises ValueError there, which the 2026-07-28 request path answers -32603 "Internal server
    error" and logs with a traceback.
    """

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None,
                         context: Context[Any, Any] | None = None) -> GetPromptResult | InputRequiredResult:
        if name not in {prompt.name for prompt in await self.list_prompts()}:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}", data={"name": name})
        return await super().get_prompt(name, arguments, context)


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
    catalog = ToolCatalog(account_tools=account.ACCOUNT_TOOLS)
    gate = AuthorizationGate(lambda: runtime.authority, caller, catalog, missing_token_hint=missing_token_hint,
                             on_call=on_tool_call, upgrades=upgrades)
    server = KamiyoServer(
        "kamiyo",
        title="KAMIYO exploit intelligence",
        instructions=INSTRUCTIONS,
        website_url=runtime.settings.public_url,
        version=__version__,
        log_level=runtime.settings.log_level,
        request_state_security=RequestStateSecurity(keys=[resolve_jwt_secret(runtime.settings)]),
        extensions=[gate, *inner_extensions],
        middleware=[MessageGate(gate, counts_as)],
        catalog=catalog,
    )
    account.register(server, runtime)
    intel.register(server, runtime)
    incidents.register(server, runtime)
    prompts.register(server, runtime)
    return server


def counts_as(method: str, params: dict[str, Any]) -> str | None:
    """The tool an incident read or a prompt counts as; None for anything else (not gated, not counted)."""
    if method == "resources/read":
        uri = params.get("uri")
        return incidents.COUNTS_AS if isinstance(uri, str) and uri.startswith(incidents.PREFIX) else None
    name, arguments = params.get("name"), params.get("arguments") or {}
    if not isinstance(name, str) or name not in prompts.PROMPTS or not isinstance(arguments, dict):
        return None
    tool, required = prompts.PROMPTS[name]
    return tool if all(isinstance(arguments.get(a), str) for a in required) else None
