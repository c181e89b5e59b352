"""Prompts a person picks from a menu: due diligence on a protocol, screening a wallet before using it.

Each prompt runs the matching tool for the caller's tier and puts its answer (the compact text) into
the message, with what to do next. Getting one is gated and counted like a call of that tool
(see `gate.MessageGate`): `screen_wallet_before_interacting` needs the tier monitor_wallet needs.
"""

from __future__ import annotations

import logging

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from kamiyo_mcp.gate import current_grant
from kamiyo_mcp.intel.errors import IntelError, IntelStoreError
from kamiyo_mcp.intel.queries import assess_protocol_risk, screen_wallet
from kamiyo_mcp.intel.render import render_risk, render_wallet
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.tools.intel import RISK_DETAIL, STORE_UNAVAILABLE

logger = logging.getLogger(__name__)

# Each prompt → the tool whose tier and quota getting it counts against, and its required arguments.
PROMPTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "due_diligence_on_protocol": ("assess_defi_protocol_risk", ("protocol",)),
    "screen_wallet_before_interacting": ("monitor_wallet", ("address",)),
}
DILIGENCE_WINDOW_DAYS = 365


def register(server: MCPServer, runtime: Runtime) -> None:
    @server.prompt(name="due_diligence_on_protocol", title="Due diligence on a protocol",
                   description="Review a DeFi protocol's exploit history before depositing or integrating: its "
                   "risk score over the last year, its incidents, and a recommendation.")
    async def due_diligence_on_protocol(protocol: str, chain: str = "") -> str:
        try:
            risk = await assess_protocol_risk(runtime.intel, protocol=protocol, chain=chain or None,
                                              time_window_days=DILIGENCE_WINDOW_DAYS,
                                              detail=RISK_DETAIL[current_grant().tier.risk_detail])
        except IntelError as exc:
            raise _refusal(exc) from None
        where = f" on {risk.chain}" if risk.chain else ""
        return (
            f"I am considering depositing into or integrating with {protocol}{where}. Do a due-diligence review "
            "of its exploit history with the KAMIYO tools.\n\n"
            f"KAMIYO's risk assessment (one-year window):\n{render_risk(risk)}\n\n"
            f"Then call search_crypto_exploits with query \"{protocol}\" and sort \"newest\" to list its incidents, "
            "and get_exploit_details (or read kamiyo://incidents/{id}) for the most recent and the largest: what "
            "was exploited, how much was lost and returned, and where the sources disagree.\n\n"
            "Answer with: the risk level and what drives it; each incident on one line (date, loss, technique, "
            "whether funds came back); what this record cannot tell (no recorded incident is not proof of safety: "
            "check audits, bug bounty, admin keys and upgradeability, oracle design); and a clear recommendation "
            "(proceed, proceed with limited exposure, or avoid) with its reasons."
        )

    @server.prompt(name="screen_wallet_before_interacting", title="Screen a wallet before interacting",
                   description="Check an address before sending funds to it or approving it: its ties to known "
                   "exploits, well-known whitehat labels, and recent interactions with exploited contracts. Team "
                   "and enterprise tiers.")
    async def screen_wallet_before_interacting(address: str, chain: str = "ethereum") -> str:
        try:
            screening = await screen_wallet(runtime.intel, runtime.chain_provider, address=address,
                                            chain=chain or "ethereum", lookback_days=90)
        except IntelError as exc:
            raise _refusal(exc) from None
        return (
            f"Before I send funds to or approve {screening.address} on {screening.chain}, screen it with KAMIYO.\n\n"
            f"KAMIYO's screening:\n{render_wallet(screening)}\n\n"
            "Explain in plain words what this address is (a known whitehat, an exploiter, an exploited contract, "
            "or unknown) and the evidence behind it (incidents, roles, sources; use get_exploit_details for an "
            "incident that matters). Then tell me what to do before interacting: verify the contract and its "
            "deployer, check and revoke token approvals I no longer need, send a small test transaction first, "
            "and what was not checked."
        )


def _refusal(exc: IntelError) -> MCPError:
    """A bad argument is the caller's to fix; a failing store is the server's (its detail goes to the log)."""
    if isinstance(exc, IntelStoreError):
        logger.error("prompt: the incident store failed: %s", exc)
        return MCPError(code=INTERNAL_ERROR, message=STORE_UNAVAILABLE)
    return MCPError(code=INVALID_PARAMS, message=str(exc))
