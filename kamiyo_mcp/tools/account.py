"""`get_account_status`: what the caller's token is entitled to, and how much of it is left."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from kamiyo_mcp.gate import current_grant
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.tools.account_answer import AccountStatus, render_account

# Tools whose answer is the account view: their calls are admitted with the account's state.
ACCOUNT_TOOLS = frozenset({"get_account_status"})


def register(server: MCPServer[Any], runtime: Runtime) -> list[str]:
    @server.tool(
        title="Account status",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def get_account_status() -> Annotated[CallToolResult, AccountStatus]:
        """Show your KAMIYO account: tier, subscription status, token expiry, calls used and left this
        minute and today (after counting this call), the tier's limits, and where to upgrade, manage
        billing or get help."""
        # A view of the grant this call was admitted with: no second trip to the store.
        status = AccountStatus.model_validate(runtime.authority.account_status(current_grant()))
        return CallToolResult(content=[TextContent(type="text", text=render_account(status))],
                              structured_content=status.wire())

    return ["get_account_status"]
