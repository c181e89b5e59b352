"""The fake's Billing Meters, subscription-item writes and customer-portal flows.

Meter events follow Stripe's documented rules: the event name must be an active meter's, the
payload names a known customer (`stripe_customer_id`) and a whole `value`, the `timestamp` lies
within the past 35 days or up to 5 minutes ahead, and an `identifier` is unique for 24 hours (a
second event with it is refused: "An event already exists with identifier ..."). Adjustments
cancel an event received within 24 hours.

A portal session created with `flow_data` remembers its flow; `complete_portal_flow` does what the
customer's confirmation in Stripe's portal does (swaps the item prices) and returns the
`customer.subscription.updated` event Stripe would send, for the test to sign and deliver.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.stripe_state import InvalidRequest, NoSuchObject, Obj, StripeState, new_id

IDENTIFIER_WINDOW_SECONDS = 24 * 3600
MAX_AGE_SECONDS = 35 * 24 * 3600
MAX_AHEAD_SECONDS = 5 * 60


class DuplicateMeterEvent(InvalidRequest):
    """Stripe refuses a second event with an identifier it saw in the last 24 h (and says not to retry)."""


@dataclass
class StripeBilling:
    """Meters, meter events and adjustments, and the portal flows of one fake Stripe."""

    state: StripeState
    clock: Callable[[], float] = time.time
    meters: dict[str, Obj] = field(default_factory=dict)  # event_name -> meter
    meter_events: dict[str, Obj] = field(default_factory=dict)  # identifier -> accepted event
    received_at: dict[str, float] = field(default_factory=dict)
    adjustments: list[Obj] = field(default_factory=list)
    portal_flows: dict[str, Obj] = field(default_factory=dict)  # portal session id -> flow_data

    # -- set-up hooks ------------------------------------------------------------

    def add_metered_price(self, price_id: str, event_name: str, *, unit_amount_decimal: str = "0.2") -> Obj:
        """An active meter for `event_name` and a metered monthly price on it."""
        meter = self.meters.setdefault(event_name, {
            "id": new_id("mtr_test_"), "object": "billing.meter", "event_name": event_name, "status": "active",
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"}, "default_aggregation": {"formula": "sum"},
        })
        template = next(iter(self.state.prices.values()))
        price = copy.deepcopy(template)
        price.update(id=price_id, unit_amount=None, unit_amount_decimal=unit_amount_decimal, billing_scheme="per_unit",
                     nickname="MCP overage")
        price["recurring"] = {**(template.get("recurring") or {}), "interval": "month", "interval_count": 1,
                              "usage_type": "metered", "meter": meter["id"]}
        self.state.prices[price_id] = price
        return price

    def billed_identifiers(self) -> list[str]:
        """Identifiers of the accepted meter events not cancelled since: what the customer pays for."""
        return [i for i, event in self.meter_events.items() if not event.get("cancelled")]

    # -- meter events -------------------------------------------------------------

    def create_meter_event(self, params: Obj) -> Obj:
        now = self.clock()
        name = params["event_name"]
        meter = self.meters.get(name)
        if meter is None or meter["status"] != "active":
            raise InvalidRequest(f"No active meter was found for event_name '{name}'.", "event_name")
        payload = params["payload"]
        customer = payload.get(meter["customer_mapping"]["event_payload_key"])
        if not customer:
            raise InvalidRequest("The payload must contain stripe_customer_id.", "payload[stripe_customer_id]")
        if customer not in self.state.customers:
            raise NoSuchObject("customer", customer, "payload[stripe_customer_id]")
        value = payload.get(meter["value_settings"]["event_payload_key"], "")
        if not value.isdigit():
            raise InvalidRequest("The payload value must be a whole number.", "payload[value]")
        timestamp = params.get("timestamp", int(now))
        if timestamp < now - MAX_AGE_SECONDS or timestamp > now + MAX_AHEAD_SECONDS:
            raise InvalidRequest("Timestamp must be within the past 35 calendar days and at most 5 minutes in "
                                 "the future.", "timestamp")
        identifier = params.get("identifier") or new_id("mev_")
        seen = self.received_at.get(identifier)
        if seen is not None and now - seen < IDENTIFIER_WINDOW_SECONDS:
            raise DuplicateMeterEvent(f"An event already exists with identifier {identifier}.", "identifier")
        event = {"object": "billing.meter_event", "created": int(now), "event_name": name, "identifier": identifier,
                 "livemode": False, "payload": dict(payload), "timestamp": timestamp}
        self.meter_events[identifier] = event
        self.received_at[identifier] = now
        return {k: v for k, v in event.items()}

    def create_meter_event_adjustment(self, params: Obj) -> Obj:
        name = params["event_name"]
        if name not in self.meters:
            raise InvalidRequest(f"No active meter was found for event_name '{name}'.", "event_name")
        cancel = params.get("cancel") or {}
        identifier = cancel.get("identifier")
        if params["type"] == "cancel" and not identifier:
            raise InvalidRequest("cancel[identifier] is required for an adjustment of type cancel.",
                                 "cancel[identifier]")
        event = self.meter_events.get(identifier or "")
        if event is not None:
            if self.clock() - self.received_at[identifier or ""] > IDENTIFIER_WINDOW_SECONDS:
                raise InvalidRequest("Meter events can only be cancelled within 24 hours of being received.",
                                     "cancel[identifier]")
            event["cancelled"] = True
        # Stripe validates adjustments asynchronously: an unknown identifier is accepted here.
        adjustment = {"object": "billing.meter_event_adjustment", "event_name": name, "livemode": False,
                      "status": "pending", "type": params["type"], "cancel": {"identifier": identifier}}
        self.adjustments.append(adjustment)
        return adjustment

    # -- subscription items ---------------------------------------------------------

    def create_subscription_item(self, params: Obj) -> Obj:
        subscription = self.state.get("subscription", params["subscription"], "subscription")
        price = self.state.get("price", params.get("price", ""), "price")
        if _is_metered(price) and "quantity" in params:
            raise InvalidRequest("Quantity should not be specified where usage_type is `metered`. Remove quantity "
                                 f"from `{price['id']}`.", "quantity")
        items = subscription["items"]["data"]
        if any(item["price"]["id"] == price["id"] for item in items):
            raise InvalidRequest("Cannot add multiple subscription items with the same plan: " + price["id"], "price")
        item = copy.deepcopy(items[0])
        item.update(id=new_id("si_", 14), subscription=subscription["id"], price=copy.deepcopy(price),
                    quantity=None if _is_metered(price) else params.get("quantity", 1), metadata={})
        items.append(item)
        return item

    def delete_subscription_item(self, item_id: str) -> Obj:
        for subscription in self.state.subscriptions.values():
            items = subscription["items"]["data"]
            for item in items:
                if item["id"] == item_id:
                    if len(items) == 1:
                        raise InvalidRequest("A subscription must have at least one active plan. To cancel a "
                                             "subscription, send a DELETE request to the subscription.", "item")
                    items.remove(item)
                    return {"id": item_id, "object": "subscription_item", "deleted": True}
        raise NoSuchObject("subscription_item", item_id, "item")

    def update_subscription(self, subscription_id: str, params: Obj) -> Obj:
        subscription = self.state.get("subscription", subscription_id, "subscription_exposed_id")
        unknown = set(params) - {"metadata", "expand", "proration_behavior", "items", "payment_behavior"}
        if unknown:
            raise InvalidRequest(f"The fake does not update {', '.join(sorted(unknown))}", sorted(unknown)[0])
        for index, change in enumerate(params.get("items") or []):
            where = f"items[{index}]"
            if set(change) - {"id", "price"} or "id" not in change:
                raise InvalidRequest("The fake changes an existing item's price only.", where)
            item = next((i for i in subscription["items"]["data"] if i["id"] == change["id"]), None)
            if item is None:
                raise NoSuchObject("subscription_item", change["id"], where + "[id]")
            if "price" in change:
                price = self.state.get("price", change["price"], where + "[price]")
                if _is_metered(price) != _is_metered(item["price"]):
                    raise InvalidRequest("An item cannot change between a metered and a licensed price.",
                                         where + "[price]")
                item["price"] = copy.deepcopy(price)
        metadata = dict(subscription.get("metadata") or {})
        for key, value in (params.get("metadata") or {}).items():
            if value == "":
                metadata.pop(key, None)
            else:
                metadata[key] = value
        subscription["metadata"] = metadata
        return subscription

    # -- customer portal flows -------------------------------------------------------

    def check_portal_flow(self, params: Obj) -> None:
        """Refuse a `flow_data` the real portal would refuse (beyond its schema)."""
        flow = params.get("flow_data")
        if not flow:
            return
        if flow["type"] == "subscription_update_confirm":
            confirm = flow.get("subscription_update_confirm")
            if confirm is None:
                raise InvalidRequest("flow_data[subscription_update_confirm] is required for this flow type.",
                                     "flow_data[subscription_update_confirm]")
            subscription = self.state.get("subscription", confirm["subscription"],
                                          "flow_data[subscription_update_confirm][subscription]")
            if subscription["customer"] != params["customer"]:
                raise InvalidRequest("The subscription does not belong to this customer.",
                                     "flow_data[subscription_update_confirm][subscription]")
            # Stripe: "only up to one may be specified and subscriptions with multiple items are not updatable".
            if len(confirm["items"]) > 1:
                raise InvalidRequest("Only one subscription item may be specified.",
                                     "flow_data[subscription_update_confirm][items]")
            if len(subscription["items"]["data"]) > 1:
                raise InvalidRequest("Subscriptions with multiple items cannot be updated in the customer portal.",
                                     "flow_data[subscription_update_confirm][subscription]")
            ids = {item["id"] for item in subscription["items"]["data"]}
            for index, item in enumerate(confirm["items"]):
                where = f"flow_data[subscription_update_confirm][items][{index}]"
                if item["id"] not in ids:
                    raise NoSuchObject("subscription_item", item["id"], where + "[id]")
                if "price" in item:
                    self.state.get("price", item["price"], where + "[price]")
        redirect = (flow.get("after_completion") or {}).get("redirect")
        if (flow.get("after_completion") or {}).get("type") == "redirect" and not redirect:
            raise InvalidRequest("flow_data[after_completion][redirect] is required for a redirect.",
                                 "flow_data[after_completion][redirect]")

    def remember_flow(self, session: Obj, params: Obj) -> Obj:
        flow = params.get("flow_data")
        if flow:
            self.portal_flows[session["id"]] = flow
            session["flow"] = {"type": flow["type"], "after_completion": flow.get("after_completion"),
                               "subscription_update_confirm": flow.get("subscription_update_confirm")}
        return session

    def complete_portal_flow(self, session_id: str) -> Obj:
        """The customer confirmed in the portal: apply the flow and return Stripe's resulting event."""
        flow = self.portal_flows.pop(session_id, None)
        if flow is None or flow["type"] != "subscription_update_confirm":
            raise KeyError(f"no pending subscription_update_confirm flow for portal session {session_id}")
        confirm = flow["subscription_update_confirm"]
        subscription = self.state.subscriptions[confirm["subscription"]]
        previous = copy.deepcopy(subscription["items"])
        for change in confirm["items"]:
            item = next(i for i in subscription["items"]["data"] if i["id"] == change["id"])
            if "price" in change:
                item["price"] = copy.deepcopy(self.state.prices[change["price"]])
        return self.subscription_event(subscription["id"], "customer.subscription.updated",
                                       previous_attributes={"items": previous})

    def subscription_event(self, subscription_id: str, event_type: str, *,
                           previous_attributes: Obj | None = None) -> Obj:
        """A `customer.subscription.*` event carrying the subscription as it is now (stored like Stripe's)."""
        data: Obj = {"object": copy.deepcopy(self.state.subscriptions[subscription_id])}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event = {"id": new_id("evt_"), "object": "event", "api_version": "2026-07-29.dahlia",
                 "created": int(self.clock()), "data": data, "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": event_type}
        self.state.events[event["id"]] = event
        return event


def _is_metered(price: Obj) -> bool:
    return (price.get("recurring") or {}).get("usage_type") == "metered"


def metered_line_check(state: StripeState, line_items: list[Any]) -> None:
    """Checkout refuses a quantity on a metered price, as Stripe does."""
    for index, item in enumerate(line_items):
        price = state.prices.get(item.get("price", ""))
        if price is not None and _is_metered(price) and "quantity" in item:
            raise InvalidRequest("Quantity should not be specified where usage_type is `metered`. Remove quantity "
                                 f"from `line_items[{index}]`.", f"line_items[{index}][quantity]")
