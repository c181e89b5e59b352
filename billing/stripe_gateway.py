"""The one seam through which the billing sidecar calls Stripe (official SDK, async methods).

Every call returns a plain ``dict`` (stripe 16 objects are not dicts) and every failure,
HTTP or network, surfaces as one exception type::

    StripeGatewayError          Stripe refused the call or could not be reached
        .not_found              404 / resource_missing: the id does not exist
        .transient              worth retrying later: network, 409, 429, 5xx (or a key being fixed)

`get_raw` serves the bulk reads of a reconciliation (`billing.stripe_reads`): the body as Stripe
sent it and the response headers (Stripe's `Date` dates the read), without building SDK objects.

The API base URL is a constructor argument so tests point the gateway at a local fake.
The secret key is never logged and is scrubbed from any message that could echo it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import stripe

from billing.errors import BillingError

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
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.code = code
        self.not_found = not_found
        self.error_type = error_type
        self.should_retry = should_retry  # Stripe's Stripe-Should-Retry header, when it sent one
        self.headers: Mapping[str, str] = headers or {}  # the response's (Date, Retry-After, Request-Id)

    @property
    def transient(self) -> bool:
        """Worth retrying later: unreachable, rate-limited, a conflict in flight, Stripe's own failure, or a
        key the operator is fixing (401/403); never when Stripe said not to retry."""
        if self.should_retry is not None:
            return self.should_retry
        status = self.http_status
        return status is None or status in (401, 403, 409, 429) or status >= 500


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response as Stripe sent it: the JSON body and the headers."""

    body: dict[str, Any]
    headers: Mapping[str, str]


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

    def __init__(self, secret_key: str, api_base: str | None = None, *, timeout: float = 20) -> None:
        self._secret_key = secret_key
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

    async def change_subscription_price(self, subscription_id: str, item_id: str, price_id: str,
                                        idempotency_key: str) -> dict[str, Any]:
        """POST /v1/subscriptions/{id}: item `item_id` moves to `price_id`, the prorated difference invoiced
        now and the change applied only once that invoice is paid (`pending_if_incomplete`).

        Raises:
            StripeGatewayError: Stripe refused it or could not be reached.
        """
        params: SubscriptionUpdateParams = {"items": [{"id": item_id, "price": price_id}],
                                            "proration_behavior": "always_invoice",
                                            "payment_behavior": "pending_if_incomplete"}
        options: RequestOptions = {"idempotency_key": idempotency_key}
        return await self._call(self._client.v1.subscriptions.update_async(subscription_id, params=params,
                                                                           options=options))

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """GET /v1/subscriptions/{id}. Raises StripeGatewayError (``not_found`` if unknown)."""
        return await self._call(self._client.v1.subscriptions.retrieve_async(subscription_id))

    async def get_raw(self, path: str, params: dict[str, Any]) -> RawResponse:
        """GET `path` with `params`; the body as Stripe sent it (no SDK objects: a page of 100 expanded
        subscriptions costs more to build as objects than to fetch).

        Raises:
            StripeGatewayError: refused (with the response's ``headers``) or unreachable. Not logged: the
                caller reports it once.
        """
        try:
            response = await self._client.raw_request_async("get", path, **params)
        except stripe.APIConnectionError as exc:
            logger.debug("Stripe could not be reached: %s", type(exc.__cause__).__name__)
            raise StripeGatewayError(_UNREACHABLE) from None
        except stripe.StripeError as exc:
            raise self._translate(exc, level=logging.DEBUG) from None
        if not isinstance(response, stripe.StripeResponse):
            raise StripeGatewayError(f"Stripe answered GET {path} with a stream")
        body = response.data  # the SDK has parsed the JSON once already (OrderedDicts: plain dicts to us)
        if not isinstance(body, dict):
            raise StripeGatewayError(f"Stripe answered GET {path} with a body that is not an object")
        return RawResponse(body, response.headers)

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
            headers=exc.headers or {},
        )


def _should_retry(exc: stripe.StripeError) -> bool | None:
    headers = exc.headers or {}
    value = next((str(v).lower() for k, v in headers.items() if k.lower() == "stripe-should-retry"), None)
    return None if value not in ("true", "false") else value == "true"

