"""Rows the store hands out: plain frozen dataclasses, no behaviour."""

from __future__ import annotations

import itertools
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.subscription_state import SubscriptionRow


@dataclass(frozen=True, slots=True)
class TokenState:
    """A token joined with its entitlement and its current call counters."""

    token_id: str
    user_id: str
    email: str
    subscription_id: str
    kind: str
    stripe_subscription_id: str | None
    stripe_customer_id: str | None
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    payment_state: str | None
    created_at: int
    expires_at: int
    revoked_at: int | None
    revoked_reason: str | None
    minute_start: int | None
    minute_count: int
    day_start: int | None
    day_count: int
    credential: str = "bearer"  # the token's kind: 'bearer' (minted from a claim or grant) or 'oauth'
    # Metered overage: the subscription's metered item (None: not opted in), the customer's cap in
    # cents (None: the tier's default), and the overage calls counted in the billing period ending at
    # `overage_period` (0: unknown).
    overage_item_id: str | None = None
    overage_cap_cents: int | None = None
    overage_period: int = 0
    overage_count: int = 0


@dataclass(frozen=True, slots=True)
class CallCount:
    """The counters after a call was admitted and counted."""

    subscription_id: str
    tier: str
    minute_count: int
    minute_limit: int
    day_count: int
    day_limit: int
    metered: bool = False  # past the daily quota: billed as overage (its meter event is written)
    overage_period: int = 0
    overage_count: int = 0  # overage calls in the billing period, this one included
    overage_limit: int = 0  # overage calls the spend cap allows in the period (0: no overage)


@dataclass(frozen=True, slots=True)
class Admission:
    """One trip's answer for one call: its counts when it was admitted and counted (else None), and
    the token's state as read in the same trip — always for a refused call (None: no such token), for
    an admitted one when it was asked for."""

    counted: CallCount | None
    state: TokenState | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: str
    user_id: str
    email: str
    subscription_id: str
    tier: str
    status: str
    created_at: int
    expires_at: int
    revoked_at: int | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class NewToken:
    token_id: str
    user_id: str
    subscription_id: str
    token_hash: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    subject: str | None
    detail: str | None = None


def new_user_id() -> str:
    return "usr_" + uuid.uuid4().hex


class _CallIds:
    """Call ids unique across processes and restarts: 80 random bits drawn once per process (again in
    a forked child), then a counter. A uuid4 per call cost a system call and ~10 us on every tool
    call, and only metered calls ever use their id."""

    def __init__(self) -> None:
        self._prefix = ""
        self._next: Iterator[int] = itertools.count()

    def __call__(self) -> str:
        if not self._prefix:
            self._draw()
        return f"{self._prefix}{next(self._next):012x}"

    def _draw(self) -> None:
        self._prefix, self._next = "call_" + secrets.token_hex(10), itertools.count()


_call_ids = _CallIds()
os.register_at_fork(after_in_child=_call_ids._draw)


def new_call_id() -> str:
    """A tool call's id: its meter event's identifier at Stripe when the call is metered."""
    return _call_ids()


def new_grant_id() -> str:
    return "grant_" + uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A Stripe subscription as the store holds it, with its customer's email (for reconciliation)."""

    row: SubscriptionRow
    email: str
    stripe_customer_id: str | None
    created_at: int
    delivered: bool  # an emailed claim was created, or a token minted: the customer was given a way in
