"""The exploit-intelligence tools: search incidents, assess a protocol, screen a wallet, details.

Each tool runs behind the authorization gate and shapes its answer by the caller's tier (how far a
search may page, risk detail). Every answer is a typed model (its schema is the tool's
outputSchema) sent as structured content, with a compact text rendering beside it, both within
the answer budget. Bad arguments and a store without data come back as tool errors whose text
says exactly what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from kamiyo_mcp.gate import current_call
from kamiyo_mcp.intel.answer_base import Answer
from kamiyo_mcp.intel.answer_details import DetailsAnswer
from kamiyo_mcp.intel.answer_risk import RiskAnswer
from kamiyo_mcp.intel.answer_search import SearchAnswer
from kamiyo_mcp.intel.answer_wallet import WalletAnswer
from kamiyo_mcp.intel.errors import IntelError, IntelStoreError
from kamiyo_mcp.intel.protocol_risk import Detail
from kamiyo_mcp.intel.queries import assess_protocol_risk, exploit_details, screen_wallet, search_exploits
from kamiyo_mcp.intel.render import render_details, render_risk, render_wallet
from kamiyo_mcp.intel.render_search import render_search
from kamiyo_mcp.runtime import Runtime

logger = logging.getLogger(__name__)

# What a caller reads when the incident store fails (SQLite's own message goes to the log only).
STORE_UNAVAILABLE = "The incident data could not be read right now, so this was not answered; please retry shortly."
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
RISK_DETAIL: dict[str, Detail] = {"basic": "basic", "summary": "summary", "full": "full"}
A = TypeVar("A", bound=Answer)


def register(server: MCPServer, runtime: Runtime) -> list[str]:
    @server.tool(title="Search crypto exploits", annotations=READ_ONLY)
    async def search_crypto_exploits(
        query: Annotated[str, Field(description="What to find, as a person would type it: protocol, technique, "
                                                "class or chain words, e.g. 'flash loan attacks on BSC in 2023 "
                                                "over $1M' or 'Curve'. Chains, years, months, 'since/before …' and "
                                                "amounts in the text become filters when the matching argument is "
                                                "not given; empty lists the newest.")] = "",
        chain: Annotated[str | None, Field(description="Only incidents on this chain (any case or alias), e.g. "
                                                       "'Ethereum', 'BSC', 'Arbitrum'.")] = None,
        since: Annotated[str | None, Field(description="Only incidents on or after this ISO date, e.g. "
                                                       "'2024-01-01'.")] = None,
        until: Annotated[str | None, Field(description="Only incidents on or before this ISO date.")] = None,
        min_usd: Annotated[float | None, Field(description="Only incidents with a loss above this many USD.")] = None,
        max_usd: Annotated[float | None, Field(description="Only incidents with a loss below this many USD.")] = None,
        sort: Annotated[Literal["relevance", "newest", "largest"] | None,
                        Field(description="Order: relevance (default with words), newest (default without), "
                                          "or largest loss first.")] = None,
        limit: Annotated[int | None, Field(description="Results per page (default 20); a page also stops at the "
                                                       "100 KB answer budget.")] = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page, to get the next one "
                                                        "(send it alone, or with limit).")] = None,
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """Search real crypto-exploit incidents (DeFiLlama, BlockSec, DeFiHackLabs), ranked by relevance, newest or
        largest. Each incident reported by several sources appears once. Answers a page of incidents (id, date,
        protocol, chains, technique, loss) with the total, how the query was understood, and next_cursor for more;
        a search a plan may page through holds up to its cap (personal 50, team 200, enterprise 1000 results). When
        nothing matches, says why and suggests the nearest search that finds incidents."""
        cap = current_call().grant.tier.search_results_per_call
        return await _answer(search_exploits(runtime.intel, query=query, chain=chain, since=since, until=until,
                                             min_usd=min_usd, max_usd=max_usd, sort=sort, limit=limit, cursor=cursor,
                                             tier_cap=cap), render_search)

    @server.tool(title="Assess DeFi protocol risk", annotations=READ_ONLY)
    async def assess_defi_protocol_risk(
        protocol: Annotated[str, Field(description="Protocol name in any spelling (case, spacing, suffixes like "
                                                   "'Finance', versions), e.g. 'Curve' or 'Euler'.")],
        chain: Annotated[str | None, Field(description="Only count incidents on this chain.")] = None,
        time_window_days: Annotated[int, Field(description="Look-back window in days for recent "
                                                           "incidents (1-3650).")] = 90,
    ) -> Annotated[CallToolResult, RiskAnswer]:
        """Score a DeFi protocol's exploit risk 0-100 (low < 30 <= medium < 60 <= high < 85 <= critical) from its
        incident history: frequency, USD severity, recency and repeat incidents. Any spelling of one protocol gives
        one score. Team adds the exploit summary and recent incidents; enterprise adds each risk factor,
        recommendations and a peer comparison. Suggests names when nothing matches."""
        detail = RISK_DETAIL[current_call().grant.tier.risk_detail]
        return await _answer(assess_protocol_risk(runtime.intel, protocol=protocol, chain=chain,
                                                  time_window_days=time_window_days, detail=detail), render_risk)

    @server.tool(title="Screen a wallet", annotations=READ_ONLY)
    async def monitor_wallet(
        address: Annotated[str, Field(description="Wallet or contract address: 0x + 40 hex for EVM chains "
                                                  "(EIP-55 checksum checked when mixed-case), base58 for Solana.")],
        chain: Annotated[str, Field(description="Chain of the address, e.g. 'ethereum', 'bsc', 'solana'.")]
        = "ethereum",
        lookback_days: Annotated[int, Field(description="How far back to look for transactions with exploited "
                                                        "contracts, in days.")] = 90,
    ) -> Annotated[CallToolResult, WalletAnswer]:
        """Screen an address before interacting with it: is it tied to known exploit incidents as attacker, attack
        contract or victim contract, is it a well-known whitehat or MEV operator (curated, sourced labels), and,
        with an on-chain provider configured, has it recently transacted with exploited contracts? Answers a
        one-sentence verdict with the evidence. Team and enterprise tiers."""
        return await _answer(screen_wallet(runtime.intel, runtime.chain_provider, address=address, chain=chain,
                                           lookback_days=lookback_days), render_wallet)

    @server.tool(title="Exploit details", annotations=READ_ONLY)
    async def get_exploit_details(
        exploit_id: Annotated[str, Field(description="An incident id from search_crypto_exploits, e.g. "
                                                     "'defillama:2022-03-23:ronin-bridge'.")],
    ) -> Annotated[CallToolResult, DetailsAnswer]:
        """One exploit incident: its canonical report (amounts, technique, chains, links), what other sources say
        differently, caveats where the amounts need care, the attacker / attack-contract / victim addresses
        (with curated whitehat labels) and the attack transactions."""
        return await _answer(exploit_details(runtime.intel, exploit_id), render_details)

    return ["search_crypto_exploits", "assess_defi_protocol_risk", "monitor_wallet", "get_exploit_details"]


async def _answer(query: Awaitable[A], render: Callable[[A], str]) -> CallToolResult:
    """The tool result: the answer's compact text and its structured content; an IntelError as a tool error."""
    try:
        answer = await query
    except IntelStoreError:
        logger.exception("intel tool: the incident store failed")
        raise ToolError(STORE_UNAVAILABLE) from None
    except IntelError as exc:
        raise ToolError(str(exc)) from None
    return CallToolResult(content=[TextContent(type="text", text=render(answer))], structured_content=answer.wire())
