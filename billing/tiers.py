"""The tier table: what each subscription tier may do. Pure data, no I/O.

Every limit a tool enforces is read from here, so changing a price plan is a one-line change, and
`KAMIYO_TIERS_FILE` (see `billing.tier_file`) changes any field without a deploy. The module's
`TIERS` is the built-in table; a running server reads the `TierTable` its settings were built with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
    sessions_per_token: int = 10
    # Metered overage: past the daily quota, a subscription that carries the overage price keeps
    # working and each extra call is billed at this price, until its spend cap for the period.
    overage: bool = False
    overage_usd_per_1000_calls: float = 0.0
    overage_cap_usd: int = 0  # the operator's default cap per subscription and billing period

    @property
    def overage_micro_usd_per_call(self) -> int:
        """The overage price of one call in millionths of a dollar (exact integer arithmetic in SQL)."""
        return round(self.overage_usd_per_1000_calls * 1000)


TIERS: dict[str, Tier] = {
    "personal": Tier("personal", TierRank.PERSONAL, 19, 50, "basic", False, 30, 1_000, sessions_per_token=10),
    "team": Tier("team", TierRank.TEAM, 99, 200, "summary", True, 120, 10_000, sessions_per_token=50,
                 overage=True, overage_usd_per_1000_calls=2.0, overage_cap_usd=200),
    "enterprise": Tier("enterprise", TierRank.ENTERPRISE, 299, 1_000, "full", True, 600, 100_000,
                       sessions_per_token=200, overage=True, overage_usd_per_1000_calls=1.0, overage_cap_usd=1_000),
}
TOP_RANK = max(tier.rank for tier in TIERS.values())

TIER_NAMES: tuple[str, ...] = tuple(TIERS)

# The lowest tier each tool needs; a tool not listed is open to every tier.
TOOL_MIN_TIER: dict[str, str] = {
    "monitor_wallet": "team",
}
# Tools whose minimum tier follows a flag of the table (so a tiers file can move it).
TOOL_FLAGS: dict[str, str] = {
    "monitor_wallet": "monitor_wallet",
}


@dataclass(frozen=True, slots=True)
class TierTable:
    """The tiers in force: the built-in table, or the one a tiers file overrode (by rank order)."""

    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(TIERS))
    _ranked: tuple[Tier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Sorted once: the account view and the gate walk the tiers on every call.
        object.__setattr__(self, "_ranked", tuple(sorted(self.tiers.values(), key=lambda t: t.rank)))

    def __getitem__(self, name: str) -> Tier:
        return self.tiers[name]

    def __iter__(self) -> Iterator[Tier]:
        return iter(self._ranked)

    def get(self, name: str) -> Tier | None:
        return self.tiers.get(name)

    def min_tier_for(self, tool: str) -> Tier | None:
        """The lowest tier allowed to call `tool`, or None when every tier may."""
        flag = TOOL_FLAGS.get(tool)
        if flag is not None:
            allowed = [t for t in self if getattr(t, flag)]
            return allowed[0] if allowed else max(self, key=lambda t: t.rank)
        name = TOOL_MIN_TIER.get(tool)
        return self.tiers[name] if name else None

    def allows(self, tier: Tier, tool: str) -> bool:
        needed = self.min_tier_for(tool)
        return needed is None or tier.rank >= needed.rank

    def next_above(self, tier: Tier) -> Tier | None:
        """The next tier up, or None for the top tier."""
        return next((t for t in self if t.rank > tier.rank), None)


DEFAULT_TIERS = TierTable()


def is_tier(name: object) -> bool:
    return isinstance(name, str) and name in TIERS

