"""The tier table: what each subscription tier may do. Pure data, no I/O.

Every limit a tool enforces is read from here, so changing a price plan is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class TierRank(IntEnum):
    """Tiers in order, so "at least team" is a comparison."""

    PERSONAL = 1
    TEAM = 2
    ENTERPRISE = 3


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    rank: TierRank
    price_usd_month: int
    search_results_per_call: int
    risk_detail: str  # "basic" | "summary" | "full"
    monitor_wallet: bool
    calls_per_minute: int
    calls_per_day: int
    # Open MCP sessions per token in one server process (the oldest idle one is closed for a new one).
    sessions_per_token: int


TIERS: dict[str, Tier] = {
    "personal": Tier("personal", TierRank.PERSONAL, 19, 50, "basic", False, 30, 1_000, 10),
    "team": Tier("team", TierRank.TEAM, 99, 200, "summary", True, 120, 10_000, 50),
    "enterprise": Tier("enterprise", TierRank.ENTERPRISE, 299, 1_000, "full", True, 600, 100_000, 200),
}
TOP_RANK = max(tier.rank for tier in TIERS.values())

TIER_NAMES: tuple[str, ...] = tuple(TIERS)

# The lowest tier each tool needs; a tool not listed is open to every tier.
TOOL_MIN_TIER: dict[str, str] = {
    "monitor_wallet": "team",
}


def get_tier(name: str) -> Tier:
    """The tier called `name`.

    Raises:
        KeyError: `name` is not a tier.
    """
    return TIERS[name]


def is_tier(name: object) -> bool:
    return isinstance(name, str) and name in TIERS


def min_tier_for(tool: str) -> Tier | None:
    """The lowest tier allowed to call `tool`, or None when every tier may."""
    name = TOOL_MIN_TIER.get(tool)
    return TIERS[name] if name else None


def required_rank(tool: str) -> int:
    """The rank a subscription's tier must reach to call `tool` (0: any tier)."""
    needed = min_tier_for(tool)
    return int(needed.rank) if needed else 0


def allows(tier_name: str, tool: str) -> bool:
    """The tier-rank rule: may a subscription on `tier_name` call `tool`?

    The admit-and-count statement applies the same rule in SQL (the tier's rank against
    `required_rank(tool)`); this is how a refusal is explained.
    """
    tier = TIERS.get(tier_name)
    return tier is not None and int(tier.rank) >= required_rank(tool)
