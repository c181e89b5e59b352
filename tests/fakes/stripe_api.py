"""The fake Stripe's request pipeline and state hooks, independent of HTTP.

``FakeStripe.handle`` answers one request as Stripe would: authentication, injected failures,
routing by the spec's paths, schema validation, idempotent replay, then the in-memory state.
``stripe_fake`` serves it over real HTTP.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from stripe.params._subscription_item_create_params import SubscriptionItemCreateParams
from stripe.params._subscription_item_delete_params import SubscriptionItemDeleteParams
from stripe.params._subscription_update_params import SubscriptionUpdateParams
from stripe.params.billing._meter_event_adjustment_create_params import MeterEventAdjustmentCreateParams
from stripe.params.billing._meter_event_create_params import MeterEventCreateParams

from tests.fakes import stripe_lists
from tests.fakes.stripe_billing import DuplicateMeterEvent, StripeBilling, metered_line_check
from tests.fakes.stripe_lifecycle import Lifecycle
from tests.fakes.stripe_schema import (
    Operation,
    ParamError,
    Resolver,
    Validator,
    decode_form,
    load_operations,
    path_pattern,
)
from tests.fakes.stripe_state import SPEC_PATH, InvalidRequest, NoSuchObject, Obj, StripeState, new_id
from tests.fakes.stripe_typed_params import TypedParams

_SPEC_CACHE: dict[str, Any] = {}

_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
    "authentication for details, or we can help at https://support.stripe.com/."
)
_DEFAULT_FAILURES: dict[int, Obj] = {
    400: {"type": "invalid_request_error", "message": "Invalid request."},
    402: {"type": "card_error", "code": "card_declined", "message": "Your card was declined."},
    403: {"type": "invalid_request_error", "message": "The provided key 'rk_test_***' does not have the required "
          "permissions for this endpoint. Having the 'rak_subscription_read' permission would allow this request "
          "to continue."},
    404: {"type": "invalid_request_error", "code": "resource_missing", "message": "No such object."},
    409: {"type": "idempotency_error", "message": "A request with this key is already in progress."},
    429: {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."},
}
_SERVER_ERROR: Obj = {
    "type": "api_error",
    "message": "An unknown error occurred while processing your request.",
}


@dataclass
class RecordedRequest:
    """One request as the fake received it; ``params`` are schema-coerced when they validated."""

    method: str
    path: str
    params: dict[str, Any]
    form: list[tuple[str, str]]
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Reply:
    status: int
    body: Obj
    headers: dict[str, str] = field(default_factory=dict)


def stripe_error(status: int, error: Obj) -> Reply:
    return Reply(status, {"error": error})


@dataclass(frozen=True)
class TypedOperation:
    """An endpoint newer than the spec copy, validated against stripe-python 16's parameter types."""

    method: str
    template: str
    pattern: re.Pattern[str]
    params: TypedParams

    def validate(self, params: dict[str, Any], validator: Validator) -> dict[str, Any]:
        return self.params.validate(params)


def _typed(method: str, template: str, params_class: type) -> TypedOperation:
    return TypedOperation(method, template, path_pattern(template), TypedParams(params_class))


_TYPED_OPERATIONS = (
    _typed("post", "/v1/billing/meter_events", MeterEventCreateParams),
    _typed("post", "/v1/billing/meter_event_adjustments", MeterEventAdjustmentCreateParams),
    _typed("post", "/v1/subscription_items", SubscriptionItemCreateParams),
    _typed("delete", "/v1/subscription_items/{item}", SubscriptionItemDeleteParams),
    _typed("post", "/v1/subscriptions/{subscription_exposed_id}", SubscriptionUpdateParams),
)


def _spec() -> dict[str, Any]:
    # 870 KB of JSON: parse once per test session, never at import.
    if "spec" not in _SPEC_CACHE:
        _SPEC_CACHE["spec"] = json.loads(SPEC_PATH.read_text())
    return _SPEC_CACHE["spec"]


class FakeStripe:
    """The fake's state and request pipeline; ``base_url`` is set once its server listens."""

    def __init__(self, *, seed: bool = True, clock: Callable[[], float] = time.time) -> None:
        spec = _spec()
        self.base_url = ""
        self._seed = seed
        # Stripe's clock as the fake tells it: event `created`, object times and the `Date` header.
        self.clock = clock
        self._operations: list[Operation | TypedOperation] = [*load_operations(spec), *_TYPED_OPERATIONS]
        self._validator = Validator(Resolver(spec))
        # The server thread and the test thread both touch the state.
        self._lock = threading.Lock()
        self.reset()
        self._handlers: dict[tuple[str, str], Callable[[Obj, dict[str, str]], Obj]] = {
            ("post", "/v1/checkout/sessions"): lambda p, _: self._create_checkout_session(p),
            ("get", "/v1/checkout/sessions/{session}"): lambda _, a: self._get("checkout.session", a),
            ("post", "/v1/billing_portal/sessions"): lambda p, _: self._create_portal_session(p),
            ("get", "/v1/customers"): lambda p, _: self.state.list_customers(p),
            ("post", "/v1/customers"): lambda p, _: self.state.create_customer(p),
            ("get", "/v1/customers/{customer}"): lambda _, a: self._get("customer", a),
            ("get", "/v1/subscriptions/{subscription_exposed_id}"): lambda p, a: stripe_lists.retrieve_subscription(
                self.state, a["subscription_exposed_id"], p),
            ("get", "/v1/subscriptions"): lambda p, _: stripe_lists.list_subscriptions(self.state, p),
            ("get", "/v1/events"): lambda p, _: stripe_lists.list_events(self.state, p),
            ("get", "/v1/prices/{price}"): lambda _, a: self._get("price", a),
            ("get", "/v1/events/{id}"): lambda _, a: self._get("event", a),
            ("post", "/v1/billing/meter_events"): lambda p, _: self.billing.create_meter_event(p),
            ("post", "/v1/billing/meter_event_adjustments"): lambda p, _: self.billing.create_meter_event_adjustment(p),
            ("post", "/v1/subscription_items"): lambda p, _: self.billing.create_subscription_item(p),
            ("delete", "/v1/subscription_items/{item}"): lambda _, a: self.billing.delete_subscription_item(a["item"]),
            ("post", "/v1/subscriptions/{subscription_exposed_id}"):
                lambda p, a: self.billing.update_subscription(a["subscription_exposed_id"], p),
        }

    # -- test hooks ------------------------------------------------------------

    def reset(self) -> None:
        """Forget requests, objects, idempotency keys and pending failures; re-seed fixtures."""
        with self._lock:
            self.state = StripeState(seed=self._seed, clock=lambda: self.clock())
            self.billing = StripeBilling(self.state)
            self._held: set[str] = set()
            self.lifecycle = Lifecycle(self.state, self._lock)
            self.requests: list[RecordedRequest] = []
            self._failures: list[Reply | None] = []
            self._idempotent: dict[tuple[str, str], tuple[tuple[str, str, Any], Reply]] = {}

    def add_customer(self, *, id: str | None = None, email: str | None = None, **fields: Any) -> Obj:
        """Seed a customer (fixture shape) and return it."""
        with self._lock:
            return self.state.add_customer(id=id, email=email, **fields)

    def add_subscription(self, customer: str, *, price: str | None = None, **fields: Any) -> Obj:
        """Seed an active subscription for ``customer`` on ``price`` and return it."""
        with self._lock:
            lines = [{"price": price}] if price else None
            return self.state.add_subscription(customer, lines, **fields)

    def complete_session(
        self,
        session_id: str,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        amount_total: int | None = None,
        **fields: Any,
    ) -> Obj:
        """Mark a checkout session paid and complete, as after the customer paid.

        Creates the customer (from ``customer_email``) and, in subscription mode, an active
        subscription on the session's prices unless given. Extra ``fields`` override the object.
        """
        with self._lock:
            return self.state.complete_session(
                session_id, customer=customer, subscription=subscription, amount_total=amount_total, **fields
            )

    def fail_next(
        self,
        status: int = 500,
        error: Obj | None = None,
        *,
        times: int = 1,
        should_retry: bool | None = None,
        after: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``times`` authenticated requests with a Stripe-shaped error, once ``after`` more have passed.

        ``should_retry`` sets Stripe's ``Stripe-Should-Retry`` header, which the SDK obeys over
        its own retry rules; ``headers`` adds others (e.g. ``Retry-After``). Injected failures are
        not stored for idempotent replay.
        """
        body = {**_DEFAULT_FAILURES.get(status, _SERVER_ERROR), **(error or {})}
        extra = {} if should_retry is None else {"Stripe-Should-Retry": str(should_retry).lower()}
        extra.update(headers or {})
        with self._lock:
            self._failures.extend([None] * after)
            self._failures.extend(Reply(status, {"error": body}, dict(extra)) for _ in range(times))

    def hold_replies(self, path: str) -> None:
        """Apply requests to `path` but hold their answers until `release_replies` (requests in flight)."""
        with self._lock:
            self._held.add(path)

    def release_replies(self, path: str) -> None:
        with self._lock:
            self._held.discard(path)

    def holding(self, path: str) -> bool:
        with self._lock:
            return path in self._held

    def add_metered_price(self, price_id: str, event_name: str) -> Obj:
        """Seed an active Billing Meter for `event_name` and a metered price on it."""
        with self._lock:
            return self.billing.add_metered_price(price_id, event_name)

    def complete_portal_flow(self, portal_session_id: str) -> Obj:
        """Confirm a portal session's subscription-update flow; returns the event Stripe would send."""
        with self._lock:
            return self.billing.complete_portal_flow(portal_session_id)

    def subscription_event(self, subscription_id: str, event_type: str = "customer.subscription.updated") -> Obj:
        """A `customer.subscription.*` event with the subscription as the fake holds it now."""
        with self._lock:
            return self.billing.subscription_event(subscription_id, event_type)

    def billed_identifiers(self) -> list[str]:
        """Identifiers of accepted meter events not cancelled: what the customer is billed for."""
        with self._lock:
            return self.billing.billed_identifiers()

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests for one method and path, oldest first."""
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # -- pipeline --------------------------------------------------------------

    def handle(self, method: str, path: str, form: list[tuple[str, str]], headers: dict[str, str]) -> Reply:
        """Answer one request as Stripe would; every request is recorded first."""
        headers = {k.lower(): v for k, v in headers.items()}
        record = RecordedRequest(method.upper(), path, {}, form, headers)
        with self._lock:
            self.requests.append(record)
            reply = self._handle(record)
        reply.headers.setdefault("Request-Id", new_id("req_", 14))
        reply.headers.setdefault("Date", formatdate(self.clock(), usegmt=True))
        return reply

    def _handle(self, record: RecordedRequest) -> Reply:
        api_key = _bearer_key(record.headers.get("authorization", ""))
        if api_key is None:
            return stripe_error(401, {"type": "invalid_request_error", "message": _NO_KEY})
        if not api_key.startswith("sk_test_") or len(api_key) <= len("sk_test_"):
            masked = api_key[:8] + "*" * 4 + api_key[-4:]
            return stripe_error(
                401, {"type": "invalid_request_error", "message": f"Invalid API Key provided: {masked}"}
            )
        if self._failures:
            failure = self._failures.pop(0)
            if failure is not None:
                return failure
        found = self._route(record.method.lower(), record.path)
        if found is None:
            return stripe_error(
                404,
                {
                    "type": "invalid_request_error",
                    "message": f"Unrecognized request URL ({record.method}: {record.path}). Please see "
                    "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                },
            )
        operation, path_args = found
        try:
            raw = decode_form(record.form)
            record.params = raw
            record.params = operation.validate(raw, self._validator)
        except ParamError as exc:
            return stripe_error(
                400,
                {
                    "type": "invalid_request_error",
                    "message": exc.message,
                    "param": exc.param,
                    "code": exc.code,
                },
            )
        key = record.idempotency_key if record.method == "POST" else None
        fingerprint = (record.method, record.path, record.params)
        if key is not None:
            saved = self._idempotent.get((api_key, key))
            if saved is not None:
                if saved[0] != fingerprint:
                    return stripe_error(
                        400,
                        {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                        },
                    )
                return Reply(saved[1].status, saved[1].body, {**saved[1].headers, "Idempotent-Replayed": "true"})
        reply = self._execute(operation, record.params, path_args)
        if key is not None:
            self._idempotent[(api_key, key)] = (fingerprint, reply)
        return reply

    def _execute(self, operation: Operation | TypedOperation, params: Obj, path_args: dict[str, str]) -> Reply:
        handler = self._handlers.get((operation.method, operation.template))
        if handler is None:
            return stripe_error(501, {"type": "api_error", "message": f"Fake has no handler for {operation.template}"})
        try:
            return Reply(200, json.loads(json.dumps(handler(params, path_args))))
        except NoSuchObject as exc:
            # On an object's own URL a miss is 404; as a parameter of another call it is 400.
            status = 404 if exc.param in path_args else 400
            param = "id" if status == 404 else exc.param
            return stripe_error(
                status,
                {
                    "type": "invalid_request_error",
                    "message": exc.message,
                    "param": param,
                    "code": exc.code,
                },
            )
        except InvalidRequest as exc:
            error = {"type": "invalid_request_error", "message": exc.message}
            if exc.param:
                error["param"] = exc.param
            reply = stripe_error(exc.status, error)
            if isinstance(exc, DuplicateMeterEvent):
                reply.headers["Stripe-Should-Retry"] = "false"
            return reply

    def _create_checkout_session(self, params: Obj) -> Obj:
        metered_line_check(self.state, params.get("line_items", []))
        return self.state.create_checkout_session(params)

    def _create_portal_session(self, params: Obj) -> Obj:
        self.billing.check_portal_flow(params)
        return self.billing.remember_flow(self.state.create_portal_session(params), params)

    def _route(self, method: str, path: str) -> tuple[Operation | TypedOperation, dict[str, str]] | None:
        for operation in self._operations:
            match = operation.pattern.match(path)
            if match and operation.method == method:
                return operation, match.groupdict()
        return None

    def _get(self, kind: str, path_args: dict[str, str]) -> Obj:
        (object_id,) = path_args.values()
        return self.state.get(kind, object_id, next(iter(path_args)))


def _bearer_key(authorization: str) -> str | None:
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()
