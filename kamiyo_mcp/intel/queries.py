"""The tool-facing query functions, in one import place for the MCP server."""

from __future__ import annotations

from .details import exploit_details
from .protocol_risk import assess_protocol_risk
from .search import search_exploits
from .shaping import TIER_CAPS
from .wallet import screen_wallet, validate_address

__all__ = [
    "TIER_CAPS",
    "assess_protocol_risk",
    "exploit_details",
    "screen_wallet",
    "search_exploits",
    "validate_address",
]
