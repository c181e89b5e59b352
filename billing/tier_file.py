"""`KAMIYO_TIERS_FILE`: limits without a deploy. A TOML file overrides fields of the tier table by name.

    [team]
    calls_per_day = 5
    overage = true

Every section must name a tier and every key a field of `billing.tiers.Tier` (its name and rank
excepted: the order of the tiers is fixed). The result is checked as a whole, so a file that loads
is a table the server can enforce. A problem raises `ConfigurationError` with one line naming the
bad key; the settings turn it into a start-up failure (exit 2).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from billing.errors import ConfigurationError
from billing.tiers import TIERS, Tier, TierTable

FIXED_FIELDS = ("name", "rank")
RISK_DETAILS = ("basic", "summary", "full")
MAX_COUNT = 100_000_000


def load_tier_file(path: Path) -> TierTable:
    """The built-in tier table with the file's overrides applied.

    Raises:
        ConfigurationError: unreadable, not TOML, an unknown tier or field, a bad value, or a table
            that cannot be enforced (one line, naming the key).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    return apply_overrides(document)


def apply_overrides(document: dict[str, Any]) -> TierTable:
    """The built-in table with `document`'s `[tier] field = value` overrides applied.

    Raises:
        ConfigurationError: as `load_tier_file`.
    """
    tiers = dict(TIERS)
    for name, overrides in document.items():
        if name not in TIERS:
            raise ConfigurationError(f"[{name}] is not a tier (tiers: {', '.join(TIERS)})")
        if not isinstance(overrides, dict):
            raise ConfigurationError(f"{name} must be a [{name}] table of fields, not a value")
        changes = {key: _checked(name, key, value) for key, value in overrides.items()}
        tiers[name] = dataclasses.replace(TIERS[name], **changes)
    table = TierTable(tiers)
    _check_table(table)
    return table


_FIELDS = {f.name: f for f in dataclasses.fields(Tier)}


def _checked(tier: str, key: str, value: object) -> Any:
    where = f"[{tier}] {key}"
    if key in FIXED_FIELDS:
        raise ConfigurationError(f"{where} cannot be overridden (the tiers' names and order are fixed)")
    if key not in _FIELDS:
        fields = ", ".join(n for n in _FIELDS if n not in FIXED_FIELDS)
        raise ConfigurationError(f"{where} is not a tier field (fields: {fields})")
    if key in ("monitor_wallet", "overage"):
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where} must be true or false (got {value!r})")
        return value
    if key == "risk_detail":
        if value not in RISK_DETAILS:
            raise ConfigurationError(f"{where} must be one of {', '.join(RISK_DETAILS)} (got {value!r})")
        return value
    if key == "overage_usd_per_1000_calls":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigurationError(f"{where} must be a number of dollars >= 0 (got {value!r})")
        if value * 1000 != round(value * 1000):
            raise ConfigurationError(f"{where} must be a whole number of millionths of a dollar per call "
                                     f"(at most 3 decimals; got {value!r})")
        return float(value)
    low = 0 if key in ("price_usd_month", "overage_cap_usd") else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_COUNT:
        raise ConfigurationError(f"{where} must be a whole number from {low} to {MAX_COUNT:,} (got {value!r})")
    return value


def _check_table(table: TierTable) -> None:
    flags_seen = False
    for tier in table:
        if tier.monitor_wallet:
            flags_seen = True
        elif flags_seen:
            raise ConfigurationError(f"[{tier.name}] monitor_wallet: a higher tier cannot lose what a lower one has")
        if tier.overage and tier.overage_micro_usd_per_call <= 0:
            raise ConfigurationError(f"[{tier.name}] overage_usd_per_1000_calls must be above 0 when overage = true")
