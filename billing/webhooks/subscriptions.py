"""`customer.subscription.created|updated|deleted`: the subscription's status, tier and period."""

from __future__ import annotations

import dataclasses

from billing.subscription_apply import ENDED_REASON, apply_subscription
from billing.subscription_state import lifecycle_rank, parse_customer, parse_subscription
from billing.webhooks.context import ACTOR, Applied, EventContext, Handler, ignored, processed

__all__ = ["ENDED_REASON", "HANDLERS", "on_subscription_event"]


async def on_subscription_event(ctx: EventContext) -> Applied:
    """Apply the subscription's state through the shared path (`billing.subscription_apply`), unless
    a newer event was applied; it revokes the tokens when the subscription ends."""
    event, tx = ctx.event, ctx.tx
    snapshot = parse_subscription(event.object, ctx.config)
    if event.type == "customer.subscription.deleted":
        snapshot = dataclasses.replace(snapshot, status="canceled")
    applied = await apply_subscription(
        tx, ctx.config, snapshot, parse_customer(event.object.get("customer")), stripe_object=event.object,
        observed_at=event.created, read=False, rank=lifecycle_rank(event.type), actor=ACTOR,
        action=event.type.removeprefix("customer."), reference=f"event={event.id}")
    if applied.outcome == "not_ours":
        return ignored(applied.message)
    return processed(applied.message)


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": on_subscription_event,
    "customer.subscription.updated": on_subscription_event,
    "customer.subscription.deleted": on_subscription_event,
}
