"""Each incident as an MCP resource: `kamiyo://incidents/{id}`, the answer get_exploit_details gives.

Reading one is gated and counted like a call of get_exploit_details (see `gate.MessageGate`).
"""

from __future__ import annotations

import json
import logging

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from kamiyo_mcp.intel.errors import IntelError, IntelInputError, IntelStoreError
from kamiyo_mcp.intel.queries import exploit_details
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.tools.intel import STORE_UNAVAILABLE

logger = logging.getLogger(__name__)

TEMPLATE = "kamiyo://incidents/{id}"
PREFIX = "kamiyo://incidents/"
# The tool whose tier and quota a read of one incident counts against.
COUNTS_AS = "get_exploit_details"


def register(server: MCPServer, runtime: Runtime) -> None:
    @server.resource(
        TEMPLATE,
        name="incident",
        title="Exploit incident",
        description="One exploit incident by id (e.g. kamiyo://incidents/defillama:2022-03-23:ronin-bridge): its "
        "canonical report, the other sources' differences, amount caveats, addresses and attack transactions, as "
        "JSON (the structured answer of get_exploit_details). Ids come from search_crypto_exploits.",
        mime_type="application/json",
    )
    async def incident(id: str) -> str:  # noqa: A002 (the template's variable name)
        try:
            answer = await exploit_details(runtime.intel, id)
        except IntelInputError as exc:  # no such incident (the message says what ids look like)
            raise ResourceNotFoundError(f"{PREFIX}{id}: {exc}") from None
        except IntelStoreError:
            logger.exception("%s%s: the incident store failed", PREFIX, id)
            raise ResourceError(STORE_UNAVAILABLE) from None
        except IntelError as exc:  # e.g. nothing loaded yet: the message says how to load data
            raise ResourceError(str(exc)) from None
        return json.dumps(answer.wire(), ensure_ascii=False)
