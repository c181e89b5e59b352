"""Metered overage: the terms a Stripe subscription carries and what they allow. Pure, no I/O.

A subscription has opted in when it carries the metered overage price as an item; its customer may
lower the spend cap for a billing period below the operator's default (the tier's
`overage_cap_usd`) with the subscription's `metadata.overage_cap_usd`, never raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing.tiers import Tier

CAP_METADATA_KEY = "overage_cap_usd"
MAX_CAP_USD = 10_000_000


@dataclass(frozen=True, slots=True)
class OverageTerms:
    """The overage item of a Stripe subscription (None: not opted in) and the customer's cap, in cents."""

    item_id: str | None
    cap_cents: int | None


def overage_terms(subscription: Mapping[str, Any], overage_price: str | None) -> OverageTerms:
    """What a Stripe subscription object says about overage (either API shape)."""
    item_id = None
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        price = item.get("price") or item.get("plan")
        price_id = price.get("id") if isinstance(price, Mapping) else price
        if overage_price and price_id == overage_price and isinstance(item.get("id"), str):
            item_id = item["id"]
    metadata = subscription.get("metadata")
    cap = metadata.get(CAP_METADATA_KEY) if isinstance(metadata, Mapping) else None
    return OverageTerms(item_id, parse_cap_usd(cap))


def parse_cap_usd(value: object) -> int | None:
    """A cap in whole dollars (from metadata or a request) as cents; None when absent or unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        dollars = value
    elif isinstance(value, str) and value.strip().isdigit():
        dollars = int(value.strip())
    else:
        return None
    return dollars * 100 if 0 <= dollars <= MAX_CAP_USD else None


def effective_cap_cents(tier: Tier, customer_cap_cents: int | None) -> int:
    """The spend cap in force: the operator's default, or the customer's if lower."""
    default = tier.overage_cap_usd * 100
    return default if customer_cap_cents is None else min(default, customer_cap_cents)


def cap_calls(tier: Tier, cap_cents: int) -> int:
    """How many overage calls a cap pays for (0 when the tier has no overage price)."""
    price = tier.overage_micro_usd_per_call
    return cap_cents * 10_000 // price if price > 0 else 0


def cost_usd(tier: Tier, calls: int) -> Decimal:
    """The estimated cost of `calls` overage calls, in dollars rounded to the cent."""
    micro = Decimal(calls * tier.overage_micro_usd_per_call)
    return (micro / Decimal(1_000_000)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def overage_status(tier: Tier, *, sold: bool, opted_in: bool, customer_cap_cents: int | None,
                   calls: int) -> dict[str, object]:
    """What the customer (get_account_status) and the operator (`kamiyo-mcp usage`) see of overage."""
    available = sold and tier.overage
    cap_cents = effective_cap_cents(tier, customer_cap_cents)
    allowed = cap_calls(tier, cap_cents)
    spent = cost_usd(tier, calls)
    cap = Decimal(cap_cents) / 100
    return {
        "available_on_tier": available,
        "enabled": available and opted_in,
        "price_per_1000_calls_usd": tier.overage_usd_per_1000_calls,
        "calls_this_period": calls,
        "estimated_cost_usd": float(spent),
        "cap_usd": float(cap),
        "cap_is_customer_set": customer_cap_cents is not None and customer_cap_cents < tier.overage_cap_usd * 100,
        "cap_left_usd": float(max(cap - spent, Decimal(0))),
        "calls_left_under_cap": max(allowed - calls, 0),
        "cap_reached": available and opted_in and calls >= allowed,
    }
