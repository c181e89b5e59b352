"""The one seam through which the billing sidecar calls Stripe (official SDK, async methods).

Every call returns a plain ``dict`` (stripe 16 objects are not dicts) and every failure,
HTTP or network, surfaces as one exception type::

    StripeGatewayError          Stripe refused the call or could not be reached
        .not_found              404 / resource_missing: the id does not exist
        .transient              worth retrying later: network, 409, 429, 5xx (or a key being fixed)

The bulk reads of a reconciliation (`list_subscriptions`, `list_events`, `read_subscription`) go
through a `Pacer` (below Stripe's rate limit, patient with 429) and are dated in Stripe's clock
(`observed_at`, see `billing.stripe_pacing`).

The API base URL is a constructor argument so tests point the gateway at a local fake.
The secret key is never logged and is scrubbed from any message that could echo it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import stripe
from stripe.params import EventListParams, SubscriptionListParams, SubscriptionRetrieveParams

from billing.errors import BillingError
from billing.stripe_pacing import Pacer, RateLimited, observed_at, retry_after_seconds

if TYPE_CHECKING:
    from stripe import RequestOptions
    from stripe.params import SubscriptionItemCreateParams, SubscriptionItemDeleteParams, SubscriptionUpdateParams
    from stripe.params.billing import MeterEventAdjustmentCreateParams, MeterEventCreateParams
    from stripe.params.billing_portal import SessionCreateParams, SessionCreateParamsFlowData
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

logger = logging.getLogger(__name__)

_UNREACHABLE = "Stripe could not be reached"
_KEY_LIKE = re.compile(r"\b[rsp]k_(?:test|live)_[A-Za-z0-9*]*")


class StripeGatewayError(BillingError):
    """Stripe refused a call or could not be reached.

    ``message`` is Stripe's user-facing message (safe to show; never contains the key),
    ``http_status`` is None for network failures, ``error_type`` is Stripe's ``error.type``
    (e.g. ``idempotency_error``: a key reused with other parameters, or still in flight).
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        not_found: bool = False,
        error_type: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.code = code
        self.not_found = not_found
        self.error_type = error_type
        self.should_retry = should_retry  # Stripe's Stripe-Should-Retry header, when it sent one

    @property
    def transient(self) -> bool:
        """Worth retrying later: unreachable, rate-limited, a conflict in flight, Stripe's own failure, or a
        key the operator is fixing (401/403); never when Stripe said not to retry."""
        if self.should_retry is not None:
            return self.should_retry
        status = self.http_status
        return status is None or status in (401, 403, 409, 429) or status >= 500


@dataclass(frozen=True, slots=True)
class StripePage:
    """One page of a Stripe list; it reflects every event created before the second `observed_at`."""

    data: list[dict[str, Any]]
    has_more: bool
    observed_at: int


@dataclass(frozen=True, slots=True)
class StripeRead:
    """One object as Stripe has it now (None: Stripe does not know the id), dated like a page."""

    object: dict[str, Any] | None
    observed_at: int


def stripe_mode(secret_key: str) -> Literal["test", "live"]:
    """Whether a secret or restricted key belongs to test or live mode."""
    return "live" if secret_key.startswith(("sk_live_", "rk_live_")) else "test"


class _FormHTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, sending the encoded form as ``content=``.

    stripe 16.1.0 passes the already-encoded body as ``data=<str>``, which httpx 0.28 deprecates
    with a DeprecationWarning on every POST; under ``-W error`` the SDK reports that warning as
    a network failure.
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        elif not kwargs.get("data"):
            kwargs.pop("data", None)
        return args, kwargs


class StripeGateway:
    """Async access to the few Stripe endpoints billing needs; close with ``aclose()``."""

    def __init__(self, secret_key: str, api_base: str | None = None, *, timeout: float = 20,
                 pacer: Pacer | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._secret_key = secret_key
        self.pacer = pacer or Pacer()
        self._monotonic = monotonic
        self._http: stripe.HTTPXClient = _FormHTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=2,
        )
        self.mode = stripe_mode(secret_key)

    def __repr__(self) -> str:
        return f"StripeGateway(mode={self.mode!r})"

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()

    async def __aenter__(self) -> StripeGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def create_checkout_session(self, params: CheckoutSessionParams,
                                      idempotency_key: str | None) -> dict[str, Any]:
        """POST /v1/checkout/sessions. Raises StripeGatewayError."""
        options: RequestOptions = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return await self._call(self._client.v1.checkout.sessions.create_async(params=params, options=options))

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """GET /v1/checkout/sessions/{id}. Raises StripeGatewayError (``not_found`` if unknown)."""
        return await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))

    async def create_portal_session(self, customer: str, return_url: str, *,
                                    flow_data: SessionCreateParamsFlowData | None = None) -> dict[str, Any]:
        """POST /v1/billing_portal/sessions, on a deep-link flow if `flow_data` is given. Raises StripeGatewayError."""
        params: SessionCreateParams = {"customer": customer, "return_url": return_url}
        if flow_data is not None:
            params["flow_data"] = flow_data
        return await self._call(self._client.v1.billing_portal.sessions.create_async(params=params))

    # ---- metered overage ---------------------------------------------------------------------

    async def create_meter_event(self, event_name: str, *, customer: str, identifier: str, timestamp: int,
                                 value: int = 1) -> dict[str, Any]:
        """POST /v1/billing/meter_events, once: `identifier` is also the idempotency key, and the caller
        (the meter-event sender) does its own retrying. Raises StripeGatewayError."""
        params: MeterEventCreateParams = {
            "event_name": event_name, "identifier": identifier, "timestamp": timestamp,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
        }
        options: RequestOptions = {"idempotency_key": identifier, "max_network_retries": 0}
        return await self._call(self._client.v1.billing.meter_events.create_async(params=params,
                                                                                  options=options))

    async def cancel_meter_event(self, event_name: str, identifier: str) -> dict[str, Any]:
        """POST /v1/billing/meter_event_adjustments cancelling the event `identifier` (within 24 h of
        Stripe receiving it). Raises StripeGatewayError."""
        params: MeterEventAdjustmentCreateParams = {"event_name": event_name, "type": "cancel",
                                                    "cancel": {"identifier": identifier}}
        options: RequestOptions = {"idempotency_key": "cancel-" + identifier, "max_network_retries": 0}
        return await self._call(self._client.v1.billing.meter_event_adjustments.create_async(
            params=params, options=options))

    async def add_subscription_item(self, subscription_id: str, price_id: str,
                                    idempotency_key: str) -> dict[str, Any]:
        """POST /v1/subscription_items: a metered price (no quantity) joins a subscription.

        Raises:
            StripeGatewayError: Stripe refused it or could not be reached.
        """
        params: SubscriptionItemCreateParams = {"subscription": subscription_id, "price": price_id}
        options: RequestOptions = {"idempotency_key": idempotency_key}
        return await self._call(self._client.v1.subscription_items.create_async(params=params,
                                                                                options=options))

    async def delete_subscription_item(self, item_id: str) -> dict[str, Any]:
        """DELETE /v1/subscription_items/{id}, invoicing what it metered so far. Raises StripeGatewayError."""
        params: SubscriptionItemDeleteParams = {"proration_behavior": "always_invoice"}
        return await self._call(self._client.v1.subscription_items.delete_async(item_id, params=params))

    async def set_subscription_metadata(self, subscription_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """POST /v1/subscriptions/{id} with `metadata` ("" unsets a key). Raises StripeGatewayError."""
        params: SubscriptionUpdateParams = {"metadata": metadata}
        return await self._call(self._client.v1.subscriptions.update_async(subscription_id, params=params))

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """GET /v1/subscriptions/{id}. Raises StripeGatewayError (``not_found`` if unknown)."""
        return await self._call(self._client.v1.subscriptions.retrieve_async(subscription_id))

    # ---- bulk reads (paced) ----------------------------------------------------------------

    async def list_subscriptions(self, *, price: str | None, created_gte: int | None = None,
                                 starting_after: str | None = None, limit: int = 100) -> StripePage:
        """One page of GET /v1/subscriptions (every status, newest first, customers expanded).

        Raises:
            StripeGatewayError: Stripe refused the call (e.g. 401 key, 403 permission) or could not be reached.
        """
        params: SubscriptionListParams = {"status": "all", "limit": limit, "expand": ["data.customer"]}
        if price is not None:
            params["price"] = price
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if starting_after is not None:
            params["starting_after"] = starting_after
        body, seen_at = await self._paced(lambda: self._client.v1.subscriptions.list_async(params=params))
        return StripePage(list(body.get("data", [])), bool(body.get("has_more")), seen_at)

    async def list_events(self, *, types: Sequence[str], created_gte: int | None = None,
                          delivery_success: bool | None = None, starting_after: str | None = None,
                          limit: int = 100) -> StripePage:
        """One page of GET /v1/events of `types` (newest first). Raises StripeGatewayError."""
        params: EventListParams = {"types": list(types), "limit": limit}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        if starting_after is not None:
            params["starting_after"] = starting_after
        body, seen_at = await self._paced(lambda: self._client.v1.events.list_async(params=params))
        return StripePage(list(body.get("data", [])), bool(body.get("has_more")), seen_at)

    async def read_subscription(self, subscription_id: str) -> StripeRead:
        """GET /v1/subscriptions/{id} with its customer expanded; ``object`` is None when Stripe has no such id.

        Raises:
            StripeGatewayError: any other refusal, or Stripe could not be reached.
        """
        params: SubscriptionRetrieveParams = {"expand": ["customer"]}
        try:
            body, seen_at = await self._paced(
                lambda: self._client.v1.subscriptions.retrieve_async(subscription_id, params=params))
        except _NotFound as missing:
            return StripeRead(None, missing.observed_at)
        return StripeRead(body, seen_at)

    async def _paced(self, request: Callable[[], Awaitable[stripe.StripeObject]]) -> tuple[dict[str, Any], int]:
        sent = self._monotonic()

        async def attempt() -> stripe.StripeObject:
            try:
                return await request()
            except stripe.RateLimitError as exc:
                raise RateLimited(retry_after_seconds(exc.headers)) from None

        try:
            result = await self.pacer.call(attempt)
        except RateLimited:
            raise StripeGatewayError("Stripe kept answering 429 (rate limited); try again later",
                                     http_status=429) from None
        except stripe.APIConnectionError as exc:
            # The caller reports it (a run's one line, or the schedule's log): no second line here.
            logger.debug("Stripe could not be reached: %s", type(exc.__cause__).__name__)
            raise StripeGatewayError(_UNREACHABLE) from None
        except stripe.StripeError as exc:
            error = self._translate(exc, level=logging.DEBUG)
            if error.not_found and error.http_status == 404:
                raise _NotFound(observed_at(exc.headers, sent, self._monotonic())) from None
            raise error from None
        response = result.last_response
        seen_at = observed_at(response.headers if response else None, sent, self._monotonic())
        # The body exactly as Stripe sent it: `to_dict()` turns decimal strings into Decimal, which
        # neither JSON output nor a stored event payload can hold.
        body = json.loads(response.body) if response is not None and response.body else result.to_dict()
        return dict(body), seen_at

    async def _call(self, pending: Awaitable[stripe.StripeObject]) -> dict[str, Any]:
        try:
            result = await pending
        except stripe.APIConnectionError as exc:
            logger.warning("Stripe could not be reached: %s", type(exc.__cause__).__name__)
            raise StripeGatewayError(_UNREACHABLE) from None
        except stripe.StripeError as exc:
            raise self._translate(exc) from None
        return result.to_dict()

    def _translate(self, exc: stripe.StripeError, *, level: int | None = None) -> StripeGatewayError:
        error = exc.error
        code = exc.code or (error.code if error is not None else None)
        message = exc.user_message or "Stripe request failed"
        if self._secret_key:
            message = message.replace(self._secret_key, "[redacted]")
        # Stripe quotes a refused key masked, but with its mode and last characters: none of it leaves here.
        message = _KEY_LIKE.sub("[redacted]", message)
        status = exc.http_status
        # A 4xx is usually the caller's business (unknown id, declined card); 5xx is Stripe's.
        if level is None:
            level = logging.WARNING if status is None or status >= 500 else logging.INFO
        logger.log(level, "Stripe refused a call: status=%s code=%s request_id=%s", status, code, exc.request_id)
        return StripeGatewayError(
            message,
            http_status=status,
            request_id=exc.request_id,
            code=code,
            not_found=status == 404 or code == "resource_missing",
            error_type=getattr(error, "type", None) if error is not None else None,
            should_retry=_should_retry(exc),
        )


def _should_retry(exc: stripe.StripeError) -> bool | None:
    headers = exc.headers or {}
    value = next((str(v).lower() for k, v in headers.items() if k.lower() == "stripe-should-retry"), None)
    return None if value not in ("true", "false") else value == "true"


class _NotFound(Exception):
    def __init__(self, observed_at: int) -> None:
        super().__init__("not found")
        self.observed_at = observed_at
