"""List endpoints of the fake: filters, newest-first order, cursor pagination and `expand`, as Stripe does.

    GET /v1/subscriptions   customer, price, status (default: not ended; `all`; `ended`), created, expand
    GET /v1/events          type (with `*` wildcards), types[], delivery_success, created
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from tests.fakes.stripe_state import InvalidRequest, Obj, StripeState

ENDED = ("canceled", "incomplete_expired")
MAX_LIMIT = 100
MAX_TYPES = 20


def page(items: list[Obj], params: Obj, url: str) -> Obj:
    """A Stripe list object of `items` (already newest first) honouring limit/starting_after/ending_before."""
    limit = params.get("limit", 10)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"This value must be between 1 and {MAX_LIMIT}.", "limit")
    if "starting_after" in params and "ending_before" in params:
        raise InvalidRequest("You may only specify one of these parameters: ending_before, starting_after.")
    ids = [item["id"] for item in items]
    if "starting_after" in params:
        cursor = params["starting_after"]
        if cursor not in ids:
            raise InvalidRequest(f"No such object: '{cursor}'", "starting_after")
        rest = items[ids.index(cursor) + 1 :]
        return {"object": "list", "data": rest[:limit], "has_more": len(rest) > limit, "url": url}
    if "ending_before" in params:
        cursor = params["ending_before"]
        if cursor not in ids:
            raise InvalidRequest(f"No such object: '{cursor}'", "ending_before")
        before = items[: ids.index(cursor)]
        return {"object": "list", "data": before[-limit:], "has_more": len(before) > limit, "url": url}
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}


def in_range(value: int, bounds: Any) -> bool:
    """Stripe's `created` filter: an exact integer or a {gt, gte, lt, lte} range."""
    if isinstance(bounds, int):
        return value == bounds
    tests: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda v, b: v > b, "gte": lambda v, b: v >= b, "lt": lambda v, b: v < b, "lte": lambda v, b: v <= b}
    return all(tests[key](value, bound) for key, bound in bounds.items())


def newest_first(objects: Iterable[Obj]) -> list[Obj]:
    # Insertion order breaks ties in `created`, newest first, as Stripe's own order does.
    indexed = list(enumerate(objects))
    indexed.sort(key=lambda pair: (pair[1]["created"], pair[0]), reverse=True)
    return [obj for _, obj in indexed]


def expand(obj: Obj, paths: list[str], state: StripeState, *, prefix: str = "") -> Obj:
    """A copy of `obj` with its `customer` expanded when `paths` asks for `<prefix>customer`."""
    wanted = {p.removeprefix(prefix) for p in paths if p.startswith(prefix)}
    unknown = wanted - {"customer"}
    if unknown:
        raise InvalidRequest(f"This property cannot be expanded ({sorted(unknown)[0]}).", "expand")
    if "customer" in wanted and isinstance(obj.get("customer"), str):
        obj = copy.copy(obj)
        customer = state.customers.get(obj["customer"])
        obj["customer"] = customer if customer is not None else {"id": obj["customer"], "object": "customer",
                                                                 "deleted": True}
    return obj


def list_subscriptions(state: StripeState, params: Obj) -> Obj:
    status = params.get("status")
    if "customer" in params:
        state.get("customer", params["customer"], "customer")

    price = params.get("price")

    def keep(sub: Obj) -> bool:
        if status is None and sub["status"] in ENDED:
            return False
        if status == "ended" and sub["status"] not in ENDED:
            return False
        if status not in (None, "all", "ended") and sub["status"] != status:
            return False
        if "customer" in params and sub["customer"] != params["customer"]:
            return False
        if price is not None and not _has_price(sub, price):
            return False
        return "created" not in params or in_range(sub["created"], params["created"])

    found = newest_first(s for s in state.subscriptions.values() if keep(s))
    listed = page(found, params, "/v1/subscriptions")
    listed["data"] = [expand(sub, params.get("expand", []), state, prefix="data.") for sub in listed["data"]]
    return listed


def list_events(state: StripeState, params: Obj) -> Obj:
    if "type" in params and "types" in params:
        raise InvalidRequest("You may only specify one of these parameters: type, types.")
    types = params.get("types")
    if types is not None and len(types) > MAX_TYPES:
        raise InvalidRequest(f"You may pass at most {MAX_TYPES} types.", "types")

    def keep(event: Obj) -> bool:
        if "type" in params and not fnmatch.fnmatchcase(event["type"], params["type"]):
            return False
        if types is not None and event["type"] not in types:
            return False
        if "delivery_success" in params:
            delivered = state.delivered.get(event["id"])
            # false: still pending or failed to some endpoint; true: delivered everywhere
            if params["delivery_success"] != (delivered is True):
                return False
        return "created" not in params or in_range(event["created"], params["created"])

    found = newest_first(e for e in state.events.values() if keep(e))
    listed = page(found, params, "/v1/events")
    listed["data"] = [_with_pending(event, state) for event in listed["data"]]
    return listed


def retrieve_subscription(state: StripeState, subscription_id: str, params: Obj) -> Obj:
    return expand(state.get("subscription", subscription_id, "subscription_exposed_id"), params.get("expand", []),
                  state)


def _has_price(sub: Obj, price: str) -> bool:
    """Whether an item of the subscription is on `price` (its `price`, or the legacy `plan`)."""
    for item in sub["items"]["data"]:
        for key in ("price", "plan"):
            value = item.get(key)
            if value is not None and value.get("id") == price:
                return True
    return False


def _with_pending(event: Obj, state: StripeState) -> Obj:
    event = copy.copy(event)
    event["pending_webhooks"] = 0 if state.delivered.get(event["id"]) is True else 1
    return event
