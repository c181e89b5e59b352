"""Where the store and Stripe disagree about one subscription: the drift kinds. Pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from billing.access import entitlement_ended
from billing.store.records import StoredSubscription
from billing.subscription_state import TERMINAL_STATUSES, CustomerSnapshot, SubscriptionRow, SubscriptionSnapshot


class DriftKind(StrEnum):
    MISSING_HERE = "missing_here"  # Stripe has a subscription on one of our prices that the store lacks
    ENDED_IN_STRIPE = "ended_in_stripe"  # no access per Stripe, access here
    ENTITLED_IN_STRIPE = "entitled_in_stripe"  # access per Stripe, none here (ended or missing)
    TIER = "tier"  # the price (tier) differs
    STATUS = "status"  # the status differs (past_due, unpaid, canceled, ...)
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    PERIOD_END = "period_end"
    EMAIL = "email"  # the customer's email differs
    NOT_DELIVERED = "not_delivered"  # entitled, but the customer was never sent a claim (and has no token)
    UNKNOWN_TO_STRIPE = "unknown_to_stripe"  # a subscription here that Stripe does not know
    UNKNOWN_PRICE = "unknown_price"  # Stripe moved it to a price that is not one of ours (an operator decides)
    MISSED_EVENT = "missed_event"  # Stripe could not deliver an event that the store has not applied


# Kinds that --fix cannot heal by itself: they need an operator's decision.
NEEDS_OPERATOR = frozenset({DriftKind.UNKNOWN_PRICE})


@dataclass(frozen=True, slots=True)
class Finding:
    """One drifted subscription: its kinds, what Stripe says (as read at `observed_at`) and the store row.

    Stripe's object is kept as its compact JSON (a tenth of the memory of the parsed object), so that a
    run that finds thousands of drifted subscriptions stays small.
    """

    subscription_id: str
    kinds: tuple[DriftKind, ...]
    stripe_json: str | None  # None: Stripe does not know the id
    stored: StoredSubscription | None  # None: the store does not know the id
    observed_at: int
    snapshot: SubscriptionSnapshot | None = None
    customer: CustomerSnapshot | None = None

    @classmethod
    def of(cls, stripe_object: Mapping[str, Any], kinds: tuple[DriftKind, ...], stored: StoredSubscription | None,
           observed_at: int, snapshot: SubscriptionSnapshot, customer: CustomerSnapshot | None) -> Finding:
        return cls(snapshot.subscription_id, kinds, json.dumps(stripe_object, separators=(",", ":")), stored,
                   observed_at, snapshot, customer)

    @property
    def stripe_object(self) -> dict[str, Any] | None:
        return None if self.stripe_json is None else dict(json.loads(self.stripe_json))

    @property
    def healable(self) -> bool:
        return not NEEDS_OPERATOR.intersection(self.kinds)


def grants_access(status: str, period_end: int | None, cancel_at_period_end: bool, now: int) -> bool:
    return entitlement_ended(status, period_end, cancel_at_period_end, now) is None


def compare(snapshot: SubscriptionSnapshot, customer: CustomerSnapshot | None, stored: StoredSubscription | None,
            now: int) -> tuple[DriftKind, ...]:
    """Every way the store's row disagrees with Stripe's object (empty: they agree)."""
    entitled_there = grants_access(snapshot.status, snapshot.current_period_end, snapshot.cancel_at_period_end, now)
    kinds: list[DriftKind] = []
    if snapshot.tier is None:
        if stored is None:
            return ()  # not an MCP subscription at all
        kinds.append(DriftKind.UNKNOWN_PRICE)
    if stored is None:
        kinds.append(DriftKind.MISSING_HERE)
        if entitled_there:
            kinds.append(DriftKind.ENTITLED_IN_STRIPE)
        return tuple(kinds)
    row = stored.row
    entitled_here = grants_access(row.status, row.current_period_end, row.cancel_at_period_end, now)
    if entitled_here and not entitled_there:
        kinds.append(DriftKind.ENDED_IN_STRIPE)
    if entitled_there and not entitled_here:
        kinds.append(DriftKind.ENTITLED_IN_STRIPE)
    if snapshot.tier is not None and snapshot.tier != row.tier:
        kinds.append(DriftKind.TIER)
    if snapshot.status != row.status:
        kinds.append(DriftKind.STATUS)
    if snapshot.cancel_at_period_end != row.cancel_at_period_end:
        kinds.append(DriftKind.CANCEL_AT_PERIOD_END)
    if snapshot.current_period_end != row.current_period_end:
        kinds.append(DriftKind.PERIOD_END)
    email = customer.email if customer is not None and not customer.deleted else None
    if email and email != stored.email:
        kinds.append(DriftKind.EMAIL)
    if email and entitled_there and not stored.delivered:
        kinds.append(DriftKind.NOT_DELIVERED)
    return tuple(kinds)


def agrees(snapshot: SubscriptionSnapshot, row: SubscriptionRow) -> bool:
    """Whether a stored row holds what Stripe's object says (tier, status, period, cancellation)."""
    return ((snapshot.tier is None or snapshot.tier == row.tier) and snapshot.status == row.status
            and snapshot.current_period_end == row.current_period_end
            and snapshot.cancel_at_period_end == row.cancel_at_period_end)


def unknown_to_stripe(stored: StoredSubscription, observed_at: int) -> Finding | None:
    """A stored subscription that Stripe answered 404 for: drift unless the store has already ended it."""
    if stored.row.status in TERMINAL_STATUSES:
        return None
    return Finding(stored.row.subscription_id, (DriftKind.UNKNOWN_TO_STRIPE,), None, stored, observed_at)
