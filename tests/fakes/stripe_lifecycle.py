"""What happens in Stripe outside our API calls (a customer pays, a dashboard edit, a renewal, a
cancellation), each change recorded as the event Stripe would send, dated by the fake's clock.

    life = fake.lifecycle
    sub = life.buy("ann@example.com", PERSONAL, tier="personal")  # customer, subscription, checkout events
    life.change_price(sub["id"], TEAM)                   # customer.subscription.updated
    life.cancel(sub["id"])                               # customer.subscription.deleted
    life.events_since(mark)                              # the events to deliver (or drop) in a test

Event shapes follow API 2026-07-29 (`tests/data/stripe/events/`): periods on the items, invoices
and sessions pointing at their subscription. Every event starts undelivered (`delivered` None).
"""

from __future__ import annotations

import copy
import threading

from tests.fakes.stripe_state import Obj, StripeState, fixture, new_id, set_item_price

API_VERSION = "2026-07-29.dahlia"
PERIOD_SECONDS = 30 * 24 * 3600


class Lifecycle:
    """Stripe-side changes to the fake's state, each emitting its event. Thread-safe (the fake's lock)."""

    def __init__(self, state: StripeState, lock: threading.Lock) -> None:
        self._state = state
        self._lock = lock

    # -- changes ---------------------------------------------------------------

    def buy(self, email: str, price: str, *, tier: str | None = None, status: str = "active") -> Obj:
        """A Checkout purchase as our checkout makes it (`metadata.tier` on the session and subscription):
        new customer, subscription on `price`, the completed session."""
        metadata = {"tier": tier} if tier else {}
        with self._lock:
            state = self._state
            customer = state.add_customer(email=email)
            self._emit("customer.created", customer)
            sub = state.add_subscription(customer["id"], [{"price": price}], status=status, metadata=metadata)
            self._set_period(sub, state.now())
            self._emit("customer.subscription.created", sub)
            session = state.create_checkout_session({
                "mode": "subscription", "line_items": [{"price": price, "quantity": 1}], "metadata": metadata,
                "customer": customer["id"], "success_url": "https://kamiyo.example/ok",
            })
            state.complete_session(session["id"], customer=customer["id"], subscription=sub["id"])
            self._emit("checkout.session.completed", session)
            return copy.deepcopy(sub)

    def change_price(self, subscription_id: str, price: str) -> Obj:
        """The dashboard moves the subscription to another price (tier)."""
        with self._lock:
            sub = self._state.get("subscription", subscription_id)
            previous = {"items": copy.deepcopy(sub["items"])}
            for item in sub["items"]["data"]:
                set_item_price(item, self._state.get("price", price))
            return self._updated(sub, previous)

    def set_cancel_at_period_end(self, subscription_id: str, value: bool) -> Obj:
        with self._lock:
            sub = self._state.get("subscription", subscription_id)
            previous = {"cancel_at_period_end": sub["cancel_at_period_end"]}
            sub["cancel_at_period_end"] = value
            sub["cancel_at"] = self._period_end(sub) if value else None
            return self._updated(sub, previous)

    def set_status(self, subscription_id: str, status: str) -> Obj:
        """A payment outcome moves the status (active, past_due, unpaid)."""
        with self._lock:
            sub = self._state.get("subscription", subscription_id)
            previous = {"status": sub["status"]}
            sub["status"] = status
            return self._updated(sub, previous)

    def renew(self, subscription_id: str) -> Obj:
        """The next billing period starts."""
        with self._lock:
            sub = self._state.get("subscription", subscription_id)
            previous = {"items": copy.deepcopy(sub["items"])}
            self._set_period(sub, self._period_end(sub))
            return self._updated(sub, previous)

    def cancel(self, subscription_id: str) -> Obj:
        """Canceled now (dashboard or API): final, like Stripe's."""
        with self._lock:
            state = self._state
            sub = state.get("subscription", subscription_id)
            now = state.now()
            sub.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False,
                       cancellation_details={"comment": None, "feedback": None, "reason": "cancellation_requested"})
            self._emit("customer.subscription.deleted", sub)
            return copy.deepcopy(sub)

    def change_email(self, customer_id: str, email: str) -> Obj:
        with self._lock:
            customer = self._state.get("customer", customer_id)
            previous = {"email": customer["email"]}
            customer["email"] = email
            self._emit("customer.updated", customer, previous)
            return copy.deepcopy(customer)

    def forget_subscriptions(self) -> None:
        """Drop every subscription (the seeded fixture one included), as in a fresh Stripe account."""
        with self._lock:
            self._state.subscriptions.clear()

    # -- events ----------------------------------------------------------------

    def events_since(self, mark: int = 0) -> list[Obj]:
        """Events emitted since `mark` (an index from `event_count`), oldest first."""
        with self._lock:
            return [copy.deepcopy(e) for e in list(self._state.events.values())[mark:]]

    def event_count(self) -> int:
        with self._lock:
            return len(self._state.events)

    def mark_delivery(self, event_id: str, delivered: bool) -> None:
        """Record what our endpoint answered (2xx: delivered) to the event's delivery."""
        with self._lock:
            self._state.get("event", event_id)
            self._state.delivered[event_id] = delivered

    def subscription(self, subscription_id: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self._state.get("subscription", subscription_id))

    def subscriptions(self) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(s) for s in self._state.subscriptions.values()]

    # -- helpers (lock held) ---------------------------------------------------

    def _updated(self, sub: Obj, previous: Obj) -> Obj:
        self._emit("customer.subscription.updated", sub, previous)
        return copy.deepcopy(sub)

    def _emit(self, event_type: str, obj: Obj, previous: Obj | None = None) -> Obj:
        state = self._state
        event = fixture("event")
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event.update(id=new_id("evt_"), api_version=API_VERSION, created=state.now(), data=data, livemode=False,
                     pending_webhooks=1, request={"id": None, "idempotency_key": None}, type=event_type)
        state.events[event["id"]] = event
        state.delivered[event["id"]] = None
        return event

    @staticmethod
    def _set_period(sub: Obj, start: int) -> None:
        for item in sub["items"]["data"]:
            item.update(current_period_start=start, current_period_end=start + PERIOD_SECONDS)

    @staticmethod
    def _period_end(sub: Obj) -> int:
        return max(int(item["current_period_end"]) for item in sub["items"]["data"])
