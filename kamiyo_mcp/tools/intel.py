"""The exploit-intelligence tools: search incidents, assess a protocol, screen a wallet, details.

Each tool runs behind the authorization gate and shapes its answer by the caller's tier (result
caps, risk detail). Bad arguments and a store without data come back as tool errors whose text
says exactly what to change.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from kamiyo_mcp.gate import current_call
from kamiyo_mcp.intel.errors import IntelError
from kamiyo_mcp.intel.protocol_risk import Detail
from kamiyo_mcp.intel.queries import assess_protocol_risk, exploit_details, screen_wallet, search_exploits
from kamiyo_mcp.runtime import Runtime

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RISK_DETAIL: dict[str, Detail] = {"basic": "basic", "summary": "summary", "full": "full"}


def register(server: MCPServer, runtime: Runtime) -> list[str]:
    @server.tool(title="Search crypto exploits", annotations=READ_ONLY)
    async def search_crypto_exploits(
        query: Annotated[str, Field(description="Words to find in protocol, technique, classification or chain "
                                                "names, e.g. 'flash loan' or 'Curve'; empty lists the newest.")] = "",
        chain: Annotated[str | None, Field(description="Only incidents on this chain (DeFiLlama's names, any "
                                                       "case), e.g. 'Ethereum', 'BSC', 'Arbitrum'.")] = None,
        since: Annotated[str | None, Field(description="Only incidents on or after this ISO date or datetime, "
                                                       "e.g. '2024-01-01'.")] = None,
        limit: Annotated[int | None, Field(description="Most results to return; capped by your tier "
                                                       "(personal 50, team 200, enterprise 1000).")] = None,
    ) -> dict[str, Any]:
        """Search real crypto-exploit incidents (DeFiLlama, BlockSec, DeFiHackLabs), newest first. Each incident
        reported by several sources appears once. Returns `exploits` (id, date, protocol, chains, classification,
        technique, amount_usd, returned_usd, source, source_url) and `metadata` (total_matching, returned,
        tier_cap, the query echoed)."""
        tier = current_call().grant.tier
        return await _run(search_exploits(runtime.intel, query=query, chain=chain, since=since, limit=limit,
                                          tier_cap=tier.search_results_per_call))

    @server.tool(title="Assess DeFi protocol risk", annotations=READ_ONLY)
    async def assess_defi_protocol_risk(
        protocol: Annotated[str, Field(description="Protocol name, matched forgivingly (case, spacing, "
                                                   "suffixes like 'Finance'), e.g. 'Curve' or 'Euler'.")],
        chain: Annotated[str | None, Field(description="Only count incidents on this chain.")] = None,
        time_window_days: Annotated[int, Field(description="Look-back window in days for recent "
                                                           "incidents (1-3650).")] = 90,
    ) -> dict[str, Any]:
        """Score a DeFi protocol's exploit risk 0-100 (low < 30 <= medium < 60 <= high < 85 <= critical) from its
        incident history: frequency, USD severity, recency and repeat incidents. Team adds the exploit summary and
        recent incidents; enterprise adds each risk factor, recommendations and a peer comparison. Suggests names
        when nothing matches."""
        tier = current_call().grant.tier
        return await _run(assess_protocol_risk(runtime.intel, protocol=protocol, chain=chain,
                                               time_window_days=time_window_days,
                                               detail=RISK_DETAIL[tier.risk_detail]))

    @server.tool(title="Screen a wallet", annotations=READ_ONLY)
    async def monitor_wallet(
        address: Annotated[str, Field(description="Wallet or contract address: 0x + 40 hex for EVM chains "
                                                  "(EIP-55 checksum checked when mixed-case), base58 for Solana.")],
        chain: Annotated[str, Field(description="Chain of the address, e.g. 'ethereum', 'bsc', 'solana'.")]
        = "ethereum",
        lookback_days: Annotated[int, Field(description="How far back to look for transactions with exploited "
                                                        "contracts, in days.")] = 90,
    ) -> dict[str, Any]:
        """Screen an address against known exploit incidents: is it linked to an incident as attacker, attack
        contract or victim contract (a link is not a verdict: whitehats and MEV bots appear as attackers)? With an
        on-chain provider configured, also lists its recent transactions with exploited contracts. Team and
        enterprise tiers."""
        return await _run(screen_wallet(runtime.intel, runtime.chain_provider, address=address, chain=chain,
                                        lookback_days=lookback_days))

    @server.tool(title="Exploit details", annotations=READ_ONLY)
    async def get_exploit_details(
        exploit_id: Annotated[str, Field(description="An incident id from search_crypto_exploits, e.g. "
                                                     "'defillama:2022-03-23:ronin-bridge'.")],
    ) -> dict[str, Any]:
        """Everything known about one exploit incident: amounts, technique, chains, its reports from other
        sources, attacker / attack-contract / victim addresses and attack transaction hashes."""
        return await _run(exploit_details(runtime.intel, exploit_id))

    return ["search_crypto_exploits", "assess_defi_protocol_risk", "monitor_wallet", "get_exploit_details"]


async def _run(query: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await query
    except IntelError as exc:
        raise ToolError(str(exc)) from None
    return result
