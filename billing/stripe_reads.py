"""The bulk reads of a reconciliation, through the gateway: paced, patient with 429, dated in Stripe's clock.

    reads = StripeReads(gateway)
    page = await reads.list_subscriptions(price="price_...", starting_after=None)   # StripePage
    read = await reads.read_subscription("sub_...")                                 # StripeRead

Every request waits for its turn at the `Pacer` (below Stripe's rate limit); a 429 waits as its
`Retry-After` says and is sent again. Each answer is dated `observed_at` (see `billing.stripe_pacing`):
it reflects every Stripe event created before that second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from billing.stripe_gateway import RawResponse, StripeGateway, StripeGatewayError
from billing.stripe_pacing import Pacer, RateLimited, observed_at, retry_after_seconds

PAGE_SIZE = 100  # Stripe's largest page


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


class StripeReads:
    def __init__(self, gateway: StripeGateway, *, pacer: Pacer | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._gateway = gateway
        self.pacer = pacer or Pacer()
        self._monotonic = monotonic

    async def list_subscriptions(self, *, price: str | None, created_gte: int | None = None,
                                 starting_after: str | None = None) -> StripePage:
        """One page of GET /v1/subscriptions: every status, newest first, customers expanded.

        Raises:
            StripeGatewayError: Stripe refused the call (e.g. 401 key, 403 permission) or could not be reached.
        """
        params: dict[str, Any] = {"status": "all", "limit": PAGE_SIZE, "expand": ["data.customer"]}
        if price is not None:
            params["price"] = price
        return await self._page("/v1/subscriptions", params, created_gte, starting_after)

    async def list_events(self, *, types: Sequence[str], created_gte: int | None = None,
                          delivery_success: bool | None = None, starting_after: str | None = None) -> StripePage:
        """One page of GET /v1/events of `types`, newest first. Raises StripeGatewayError."""
        params: dict[str, Any] = {"types": list(types), "limit": PAGE_SIZE}
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        return await self._page("/v1/events", params, created_gte, starting_after)

    async def read_subscription(self, subscription_id: str) -> StripeRead:
        """GET /v1/subscriptions/{id} with its customer expanded; ``object`` None when Stripe has no such id.

        Raises:
            StripeGatewayError: any other refusal, or Stripe could not be reached.
        """
        sent = self._monotonic()
        try:
            response = await self._paced(f"/v1/subscriptions/{subscription_id}", {"expand": ["customer"]})
        except StripeGatewayError as exc:
            if exc.http_status == 404 and exc.not_found:
                return StripeRead(None, observed_at(exc.headers, sent, self._monotonic()))
            raise
        return StripeRead(response.body, observed_at(response.headers, sent, self._monotonic()))

    async def _page(self, path: str, params: dict[str, Any], created_gte: int | None,
                    starting_after: str | None) -> StripePage:
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if starting_after is not None:
            params["starting_after"] = starting_after
        sent = self._monotonic()
        response = await self._paced(path, params)
        data = response.body.get("data")
        return StripePage(list(data) if isinstance(data, list) else [], bool(response.body.get("has_more")),
                          observed_at(response.headers, sent, self._monotonic()))

    async def _paced(self, path: str, params: dict[str, Any]) -> RawResponse:
        async def attempt() -> RawResponse:
            try:
                return await self._gateway.get_raw(path, params)
            except StripeGatewayError as exc:
                if exc.http_status == 429:
                    raise RateLimited(retry_after_seconds(exc.headers)) from None
                raise

        try:
            return await self.pacer.call(attempt)
        except RateLimited:
            raise StripeGatewayError("Stripe kept answering 429 (rate limited); try again later",
                                     http_status=429) from None
