"""What a webhook handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from billing.config import BillingConfig
from billing.store.billing_sql import WebhookTransaction
from billing.webhooks.event import StripeEvent

ACTOR = "stripe"


@dataclass(frozen=True, slots=True)
class Applied:
    """How a handler dealt with an event: applied (`processed`) or deliberately `ignored`."""

    status: Literal["processed", "ignored"]
    message: str


@dataclass(frozen=True, slots=True)
class EventContext:
    """One event being applied inside its transaction `tx` (which must never wait on the network)."""

    event: StripeEvent
    tx: WebhookTransaction
    config: BillingConfig


Handler = Callable[[EventContext], Awaitable[Applied]]


def processed(message: str) -> Applied:
    return Applied("processed", message)


def ignored(message: str) -> Applied:
    return Applied("ignored", message)
