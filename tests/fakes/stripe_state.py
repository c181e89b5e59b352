"""In-memory Stripe objects for the fake, built from Stripe's own fixtures.

Objects are plain dicts shaped like the API's (fixtures3.json, API 2026-07-29.dahlia), with
the fields a request sets filled in from it. Lookups that miss raise ``NoSuchObject``, which
the server turns into Stripe's ``resource_missing`` error.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from tests.support import DATA

SHARED = DATA / "stripe"
SPEC_PATH = SHARED / "openapi-trimmed.json"
FIXTURES = SHARED / "fixtures"
EVENTS = SHARED / "events"

Obj = dict[str, Any]


class InvalidRequest(Exception):
    """A request Stripe refuses for a reason beyond its schema (400 invalid_request_error)."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NoSuchObject(InvalidRequest):
    """Stripe's resource_missing: ``No such <object>: '<id>'``; 404 on the object's own URL."""

    code = "resource_missing"

    def __init__(self, kind: str, object_id: str, param: str) -> None:
        super().__init__(f"No such {kind}: '{object_id}'", param)


def fixture(name: str) -> Obj:
    """A fresh copy of one of Stripe's fixture objects (``fixtures/<name>.json``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def set_item_price(item: Obj, price: Obj) -> None:
    """Put a subscription item on `price`; its legacy `plan` mirrors the price, as Stripe's does."""
    item["price"] = copy.deepcopy(price)
    if isinstance(item.get("plan"), dict):
        item["plan"] = {**item["plan"], "id": price["id"], "amount": price.get("unit_amount"),
                        "product": price.get("product")}


class StripeState:
    """Customers, checkout sessions, subscriptions, prices and events known to the fake."""

    def __init__(self, *, seed: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.customers: dict[str, Obj] = {}
        self.checkout_sessions: dict[str, Obj] = {}
        self.subscriptions: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}
        self.events: dict[str, Obj] = {}
        # Webhook delivery of each event: None pending, True delivered, False failed (GET /v1/events
        # ?delivery_success=... reads it; tests record what our endpoint answered).
        self.delivered: dict[str, bool | None] = {}
        # Not part of the API object; kept so completing a session can build its subscription.
        self.session_line_items: dict[str, list[Obj]] = {}
        if seed:
            self._seed()

    def _seed(self) -> None:
        # The shared event files carry the realistic versions of the fixture objects
        # (active subscription with periods on its items, the "team" price).
        created = json.loads((EVENTS / "customer.subscription.created.json").read_text())
        updated = json.loads((EVENTS / "customer.subscription.updated.json").read_text())
        subscription = created["data"]["object"]
        self.subscriptions[subscription["id"]] = subscription
        self.subscription_template = copy.deepcopy(subscription)
        self.prices[fixture("price")["id"]] = fixture("price")
        team = updated["data"]["object"]["items"]["data"][0]["price"]
        self.prices[team["id"]] = team
        customer = fixture("customer")
        customer["email"] = "example@example.com"
        self.customers[customer["id"]] = customer
        for path in sorted(EVENTS.glob("*.json")):
            if path.name != "CHANGES.json":
                event = json.loads(path.read_text())
                self.events[event["id"]] = event
        # checkout.session.completed reuses the fixture event's id; the shared scenario wins.
        self.events.setdefault(fixture("event")["id"], fixture("event"))
        self.delivered.update((event_id, True) for event_id in self.events)

    def now(self) -> int:
        """The fake's clock (Stripe's, as far as its clients can tell), in whole seconds."""
        return int(self.clock())

    # -- lookups ---------------------------------------------------------------

    def get(self, kind: str, object_id: str, param: str = "id") -> Obj:
        table = {
            "customer": self.customers,
            "checkout.session": self.checkout_sessions,
            "subscription": self.subscriptions,
            "price": self.prices,
            "event": self.events,
        }[kind]
        if object_id not in table:
            raise NoSuchObject(kind, object_id, param)
        return table[object_id]

    # -- customers -------------------------------------------------------------

    def add_customer(self, *, id: str | None = None, email: str | None = None, **fields: Any) -> Obj:
        customer = fixture("customer")
        customer.update(id=id or new_id("cus_", 14), email=email, created=self.now(), discount=None)
        customer.update(fields)
        self.customers[customer["id"]] = customer
        return customer

    def create_customer(self, params: Obj) -> Obj:
        settable = ("email", "name", "description", "phone", "metadata", "preferred_locales")
        # "" is Stripe's "unset": on create it leaves the field at its default.
        return self.add_customer(**{k: params[k] for k in settable if params.get(k, "") != ""})

    def list_customers(self, params: Obj) -> Obj:
        found = [c for c in self.customers.values() if "email" not in params or c["email"] == params["email"]]
        found.sort(key=lambda c: c["created"], reverse=True)
        if "starting_after" in params:
            ids = [c["id"] for c in found]
            after = params["starting_after"]
            found = found[ids.index(after) + 1 :] if after in ids else []
        limit = params.get("limit", 10)
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": "/v1/customers",
        }

    # -- checkout --------------------------------------------------------------

    def create_checkout_session(self, params: Obj) -> Obj:
        if "customer" in params and "customer_email" in params:
            raise InvalidRequest("You may only specify one of these parameters: customer, customer_email.")
        if "customer" in params:
            self.get("customer", params["customer"], "customer")
        amount = 0
        currency = None
        for index, item in enumerate(params.get("line_items", [])):
            if "price" in item:
                price = self.get("price", item["price"], f"line_items[{index}][price]")
                amount += (price["unit_amount"] or 0) * item.get("quantity", 1)
                currency = price["currency"]
        session = fixture("checkout.session")
        session_id = new_id("cs_test_", 58)
        now = self.now()
        session.update(
            id=session_id,
            url=f"https://checkout.stripe.com/c/pay/{session_id}",
            object="checkout.session",
            created=now,
            expires_at=params.get("expires_at", now + 24 * 3600),
            livemode=False,
            mode=params.get("mode", "payment"),
            status="open",
            payment_status="unpaid",
            customer=params.get("customer"),
            customer_email=params.get("customer_email"),
            customer_details=None,
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata", {}),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            allow_promotion_codes=params.get("allow_promotion_codes"),
            billing_address_collection=params.get("billing_address_collection"),
            amount_subtotal=amount,
            amount_total=amount,
            currency=currency,
            subscription=None,
            invoice=None,
            payment_intent=None,
        )
        session["automatic_tax"]["enabled"] = params.get("automatic_tax", {}).get("enabled", False)
        self.checkout_sessions[session_id] = session
        self.session_line_items[session_id] = params.get("line_items", [])
        return session

    def complete_session(
        self,
        session_id: str,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        amount_total: int | None = None,
        **fields: Any,
    ) -> Obj:
        session = self.get("checkout.session", session_id)
        email = session["customer_email"] or "example@example.com"
        customer = customer or session["customer"] or self.add_customer(email=email)["id"]
        if customer not in self.customers:
            self.add_customer(id=customer, email=email)
        if subscription is None and session["mode"] == "subscription":
            subscription = self.add_subscription(customer, self.session_line_items.get(session_id, []))["id"]
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer,
            customer_details={"email": self.customers[customer]["email"] or email, "name": None},
            subscription=subscription,
        )
        if amount_total is not None:
            session.update(amount_total=amount_total, amount_subtotal=amount_total)
        session.update(fields)
        return session

    # -- subscriptions ---------------------------------------------------------

    def add_subscription(self, customer: str, line_items: list[Obj] | None = None, **fields: Any) -> Obj:
        """A new active subscription shaped like the seeded one, for ``customer``."""
        template = getattr(self, "subscription_template", None) or fixture("subscription")
        subscription = copy.deepcopy(template)
        subscription_id = new_id("sub_")
        now = self.now()
        items = []
        for line in line_items or [{"price": next(iter(self.prices))}]:
            item = copy.deepcopy(template["items"]["data"][0])
            item.update(id=new_id("si_", 14), subscription=subscription_id, quantity=line.get("quantity", 1))
            if "price" in line and line["price"] in self.prices:
                set_item_price(item, self.prices[line["price"]])
                if (item["price"].get("recurring") or {}).get("usage_type") == "metered":
                    item["quantity"] = None  # metered items have no quantity
            item.update(current_period_start=now, current_period_end=now + 30 * 24 * 3600)
            items.append(item)
        subscription.update(id=subscription_id, customer=customer, created=now, start_date=now, status="active")
        subscription["items"] = {**template["items"], "data": items}
        subscription["items"]["url"] = f"/v1/subscription_items?subscription={subscription_id}"
        subscription.update(fields)
        self.subscriptions[subscription_id] = subscription
        return subscription

    # -- billing portal --------------------------------------------------------

    def create_portal_session(self, params: Obj) -> Obj:
        self.get("customer", params["customer"], "customer")
        session = fixture("billing_portal.session")
        session_id = new_id("bps_")
        session.update(
            id=session_id,
            created=self.now(),
            customer=params["customer"],
            return_url=params.get("return_url"),
            livemode=False,
            flow=None,
            locale=params.get("locale"),
            url=f"https://billing.stripe.com/p/session/test_{session_id}",
        )
        return session
