"""Stripe objects → the plain state we keep, and "event + current state → new state". Pure, no I/O.

Stripe payloads come in two shapes for the same thing: current API versions put the price on
`items.data[].price` and the period on `items.data[].current_period_end`; old ones (2017-08-15,
localstripe) have only `items.data[].plan` and a top-level `current_period_end`. An invoice's
subscription is `parent.subscription_details.subscription` now, top-level `subscription` before.

Ordering: Stripe delivers events out of order and more than once. A subscription remembers the
`created` time of the last subscription event applied (`last_event_created`); an older one changes
nothing. Events of the same second (a fast lifecycle) apply in lifecycle order, created < updated <
deleted (`last_event_rank`): a creation arriving after an update of its second changes nothing.
A subscription created from a Checkout Session or an invoice alone is *provisional*
(`last_event_created` is NULL): any subscription event overrides it. `canceled` and
`incomplete_expired` are final in Stripe, so no event brings such a subscription back.

A *read* (reconciliation: the object as Stripe has it now) is dated `observed_at`: it reflects
every event created before that second (`billing.stripe_pacing.observed_at`). It goes through the
same transition as an event created at `observed_at`, except that a row whose last event is of that
second or later is newer than the read (or may be) and is kept, and that the read, being the whole
current state, may bring back a subscription the store wrongly holds as ended. An event older than
`observed_at` that arrives after the read is stale, as it is after a newer event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from billing.tiers import is_tier

TERMINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
# Within one `created` second, subscription events apply in this order, whatever order they arrive in.
LIFECYCLE_RANK = {
    "customer.subscription.created": 0,
    "customer.subscription.updated": 1,
    "customer.subscription.deleted": 2,
}
PAYMENT_PAID = "paid"
PAYMENT_PAST_DUE = "past_due"


class PriceTiers(Protocol):
    def tier_for_price(self, price_id: str | None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SubscriptionSnapshot:
    """What a Stripe subscription object says, in the terms we store."""

    subscription_id: str
    customer_id: str | None
    status: str
    tier: str | None  # None: no configured price and no metadata.tier
    price_id: str | None
    current_period_end: int | None
    cancel_at_period_end: bool


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    """An expanded Stripe customer: who to write to (email normalised as we store it)."""

    customer_id: str
    email: str | None
    name: str | None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class CheckoutSnapshot:
    session_id: str
    mode: str | None
    customer_id: str | None
    subscription_id: str | None
    email: str | None
    name: str | None
    tier: str | None
    provisional_status: str
    client_reference_id: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    invoice_id: str
    subscription_id: str | None
    customer_id: str | None
    email: str | None
    name: str | None
    tier: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """The stored state of a subscription, as the store hands it to the decisions below."""

    subscription_id: str
    user_id: str
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    payment_state: str | None
    last_event_created: int | None
    payment_event_created: int | None
    last_event_rank: int | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """The subscription fields to write."""

    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    last_event_created: int | None
    last_event_rank: int | None = None


# ---- parsing ---------------------------------------------------------------------------------

def parse_subscription(obj: Mapping[str, Any], prices: PriceTiers) -> SubscriptionSnapshot:
    """A Stripe subscription object of either API shape as a snapshot.

    Raises:
        ValueError: the object has no id or status.
    """
    subscription_id = _require_str(obj, "id")
    status = _require_str(obj, "status")
    items = [item for item in _list_data(obj.get("items")) if isinstance(item, Mapping)]
    price_ids = [p for p in (_item_price_id(item) for item in items) if p]
    top_plan = _object_id(obj.get("plan"))
    if not price_ids and top_plan:
        price_ids = [top_plan]
    tier = next((t for t in (prices.tier_for_price(p) for p in price_ids) if t), None)
    tier = tier or metadata_tier(obj)
    ends = [item["current_period_end"] for item in items if isinstance(item.get("current_period_end"), int)]
    period_end = max(ends) if ends else _int_or_none(obj.get("current_period_end"))
    return SubscriptionSnapshot(
        subscription_id=subscription_id,
        customer_id=_object_id(obj.get("customer")),
        status=status,
        tier=tier,
        price_id=price_ids[0] if price_ids else None,
        current_period_end=period_end,
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
    )


def parse_customer(value: object) -> CustomerSnapshot | None:
    """An expanded customer (None when `value` is only an id, or no customer)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
        return None
    email = _str_or_none(value.get("email"))
    return CustomerSnapshot(customer_id=value["id"], email=email.strip().lower() if email else None,
                            name=_str_or_none(value.get("name")), deleted=bool(value.get("deleted")))


def parse_checkout_session(obj: Mapping[str, Any], prices: PriceTiers) -> CheckoutSnapshot:
    """A completed Checkout Session: tier from its line items' price, else `metadata.tier`.

    Raises:
        ValueError: the session has no id.
    """
    session_id = _require_str(obj, "id")
    details = _mapping(obj.get("customer_details"))
    email = _str_or_none(details.get("email")) or _str_or_none(obj.get("customer_email"))
    line_prices = [_item_price_id(item) for item in _list_data(obj.get("line_items")) if isinstance(item, Mapping)]
    tier = next((t for t in (prices.tier_for_price(p) for p in line_prices if p) if t), None)
    paid = obj.get("payment_status") in ("paid", "no_payment_required")
    return CheckoutSnapshot(
        session_id=session_id,
        mode=_str_or_none(obj.get("mode")),
        customer_id=_object_id(obj.get("customer")),
        subscription_id=_object_id(obj.get("subscription")),
        email=email.strip().lower() if email else None,
        name=_str_or_none(details.get("name")),
        tier=tier or metadata_tier(obj),
        provisional_status="active" if paid else "incomplete",
        client_reference_id=_str_or_none(obj.get("client_reference_id")),
    )


def parse_invoice(obj: Mapping[str, Any], prices: PriceTiers) -> InvoiceSnapshot:
    """An invoice, with its subscription found in either API shape.

    Raises:
        ValueError: the invoice has no id.
    """
    invoice_id = _require_str(obj, "id")
    details = _mapping(_mapping(obj.get("parent")).get("subscription_details"))
    subscription_id = _object_id(details.get("subscription")) or _object_id(obj.get("subscription"))
    tier = None
    for line in _list_data(obj.get("lines")):
        if isinstance(line, Mapping):
            tier = prices.tier_for_price(_line_price_id(line))
            if tier:
                break
    email = _str_or_none(obj.get("customer_email"))
    return InvoiceSnapshot(
        invoice_id=invoice_id,
        subscription_id=subscription_id,
        customer_id=_object_id(obj.get("customer")),
        email=email.strip().lower() if email else None,
        name=_str_or_none(obj.get("customer_name")),
        tier=tier or metadata_tier(details) or metadata_tier(obj),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def metadata_tier(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    tier = metadata.get("tier") if isinstance(metadata, Mapping) else None
    return tier if is_tier(tier) else None


# ---- decisions -------------------------------------------------------------------------------

def lifecycle_rank(event_type: str) -> int | None:
    """Where a subscription event type stands in the lifecycle (None: not a subscription event)."""
    return LIFECYCLE_RANK.get(event_type)


def is_stale(event_created: int, last_applied: int | None, *, rank: int | None = None,
             last_rank: int | None = None) -> bool:
    """True when a newer event has already been applied.

    In the same second the lifecycle decides (a creation after an update is stale); between events of
    the same rank, or of unknown rank, the later arrival wins.
    """
    if last_applied is None or event_created > last_applied:
        return False
    if event_created < last_applied:
        return True
    return rank is not None and last_rank is not None and rank < last_rank


def next_subscription_state(current: SubscriptionRow | None, snapshot: SubscriptionSnapshot,
                            event_created: int, *, read: bool = False,
                            rank: int | None = None) -> SubscriptionState | None:
    """The state a subscription event (of lifecycle `rank`; or a `read`, see the module doc) leads to, or
    None when it changes nothing (stale or final).

    The tier falls back to the stored one when the price is not one of ours; a new subscription
    without a tier is the caller's to refuse.
    """
    if current is not None:
        if read:
            if current.last_event_created is not None and current.last_event_created >= event_created:
                return None
        elif current.status in TERMINAL_STATUSES and snapshot.status not in TERMINAL_STATUSES:
            return None
        elif is_stale(event_created, current.last_event_created, rank=rank, last_rank=current.last_event_rank):
            return None
    tier = snapshot.tier or (current.tier if current is not None else None)
    if tier is None:
        return None
    return SubscriptionState(tier, snapshot.status, snapshot.current_period_end, snapshot.cancel_at_period_end,
                             event_created, rank)


def provisional_state(current: SubscriptionRow | None, tier: str | None, status: str) -> SubscriptionState | None:
    """What a Checkout Session (or an invoice) may write: only over nothing or a provisional row."""
    if current is not None and current.last_event_created is not None:
        return None
    tier = tier or (current.tier if current is not None else None)
    if tier is None:
        return None
    period_end = current.current_period_end if current is not None else None
    return SubscriptionState(tier, status, period_end, False, None)


def payment_state_for(event_type: str) -> str:
    """The payment state an invoice event records (the past_due flag is set or cleared)."""
    return PAYMENT_PAST_DUE if event_type == "invoice.payment_failed" else PAYMENT_PAID


def ends_access(status: str) -> bool:
    """A final status: the subscription's tokens are revoked."""
    return status in TERMINAL_STATUSES


# ---- helpers ---------------------------------------------------------------------------------

def _item_price_id(item: Mapping[str, Any]) -> str | None:
    return _object_id(item.get("price")) or _object_id(item.get("plan"))


def _line_price_id(line: Mapping[str, Any]) -> str | None:
    pricing = line.get("pricing")
    if isinstance(pricing, Mapping) and isinstance(pricing.get("price_details"), Mapping):
        found = _object_id(pricing["price_details"].get("price"))
        if found:
            return found
    return _item_price_id(line)


def _list_data(value: object) -> list[Any]:
    if isinstance(value, Mapping):
        value = value.get("data")
    return list(value) if isinstance(value, list) else []


def _object_id(value: object) -> str | None:
    """An id given as a string or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _require_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the {obj.get('object', 'object')} has no {key}")
    return value


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
