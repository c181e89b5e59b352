"""A Stripe subscription's state into the store: the one path for webhook events and reconcile reads.

    applied = await apply_subscription(tx, config, snapshot, customer, observed_at=event.created,
                                       read=False, actor="stripe", action="subscription.updated",
                                       reference=f"event={event.id}")

Inside the caller's write transaction `tx`: the pure transition (`next_subscription_state`, with
its "newer wins" rule) decides the new row; then come its effects, the same whichever way the state
arrived: the row written, the customer's email kept current, the overage opt-in and cap recorded,
open upgrade links to the tier reached (and links turning overage on, once it is) completed, tokens
revoked and open claims ended when access ends; and when the subscription in force grants access
but its customer was never given a way in (no emailed claim, no token) and the source names the
customer's email (a reconcile read expands the customer; a subscription event does not, its
Checkout Session brings the mail), the claim and welcome mail through the outbox. One audit row
says what happened and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from billing.access import ENTITLED_STATUSES, entitlement_ended
from billing.config import BillingConfig
from billing.mail.claim_mail import queue_welcome
from billing.overage import overage_terms
from billing.store.billing_sql import WebhookTransaction
from billing.store.meter_sql import write_overage
from billing.store.upgrade_sql import complete_overage_links, complete_upgrade_links
from billing.subscription_state import (
    CustomerSnapshot,
    SubscriptionSnapshot,
    SubscriptionState,
    ends_access,
    next_subscription_state,
)

ENDED_REASON = "subscription_ended"


@dataclass(frozen=True, slots=True)
class SubscriptionApplied:
    """What applying a subscription's state did: written, or left alone as `stale` (or final) or `not_ours`."""

    outcome: Literal["written", "stale", "not_ours"]
    message: str
    status: str | None = None
    tier: str | None = None
    revoked: int = 0
    welcomed: bool = False


async def apply_subscription(tx: WebhookTransaction, config: BillingConfig, snapshot: SubscriptionSnapshot,
                             customer: CustomerSnapshot | None, *, stripe_object: Mapping[str, Any],
                             observed_at: int, read: bool, actor: str, action: str,
                             reference: str, rank: int | None = None) -> SubscriptionApplied:
    """Apply `snapshot` (parsed from `stripe_object`, seen at `observed_at`; `read`: a reconcile read, else
    an event, of lifecycle `rank`) to the store."""
    subscription_id = snapshot.subscription_id
    current = await tx.subscription(subscription_id)
    state = next_subscription_state(current, snapshot, observed_at, read=read, rank=rank)
    if state is None and current is None:
        return SubscriptionApplied("not_ours", f"subscription {subscription_id} has no MCP tier "
                                               f"(price {snapshot.price_id})")
    email = customer.email if customer is not None and not customer.deleted else None
    revoked, extra = 0, ""
    upgraded: list[str] = []
    if state is not None:
        if current is None:
            user_id = await tx.ensure_stripe_customer(snapshot.customer_id, email=None, name=None,
                                                      event_created=observed_at)
        else:
            user_id = current.user_id
        if customer is not None and email:
            await tx.sync_customer_email(customer.customer_id, email=email, name=customer.name,
                                         observed_at=observed_at, read=read)
        await tx.write_subscription(subscription_id, user_id, state)
        overage = overage_terms(stripe_object, config.overage_price)
        await write_overage(tx.db, subscription_id, item_id=overage.item_id, cap_cents=overage.cap_cents, now=tx.now)
        tier_row = config.tiers.get(state.tier)
        if tier_row is not None and state.status in ENTITLED_STATUSES:
            reached = [t.name for t in config.tiers if t.rank <= tier_row.rank]
            upgraded = await complete_upgrade_links(tx.db, subscription_id, reached, now=tx.now)
            if overage.item_id is not None:
                upgraded += await complete_overage_links(tx.db, subscription_id, now=tx.now)
        if ends_access(state.status):
            revoked = await tx.revoke_subscription_tokens(subscription_id, ENDED_REASON)
            await tx.expire_claims(subscription_id)
        extra = f" overage={'on' if overage.item_id else 'off'} upgrade_links_completed={len(upgraded)}"
    # The state in force now: the one just written, or the newer one the store already had.
    if state is not None:
        in_force = state
    else:
        assert current is not None
        in_force = SubscriptionState(current.tier, current.status, current.current_period_end,
                                     current.cancel_at_period_end, current.last_event_created)
    status, tier = in_force.status, in_force.tier
    welcomed = False
    if email and _grants_access(status, in_force.current_period_end, in_force.cancel_at_period_end, tx.now) \
            and not await tx.has_delivery(subscription_id):
        await queue_welcome(tx.db, subscription_id=subscription_id, recipient=email, tier=tier, now=tx.now)
        welcomed = tx.mail_queued = True
    if state is None and not welcomed:
        return SubscriptionApplied("stale", f"stale: subscription {subscription_id} already reflects a newer "
                                            f"{'change' if read else 'event'}", status, tier)
    detail = f"{reference} status={status} tier={tier} revoked={revoked}{extra}"
    await tx.audit(actor, action, subscription_id, detail + (" welcome=queued" if welcomed else ""))
    message = f"subscription {subscription_id} is {status} ({tier})"
    if revoked:
        message += f"; {revoked} token(s) revoked"
    if welcomed:
        message += "; claim and welcome mail queued"
    return SubscriptionApplied("written", message, status, tier, revoked, welcomed)


def _grants_access(status: str, period_end: int | None, cancel_at_period_end: bool, now: int) -> bool:
    return entitlement_ended(status, period_end, cancel_at_period_end, now) is None
