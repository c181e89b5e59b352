"""`customer.subscription.created|updated|deleted`: the subscription's status, tier and period."""

from __future__ import annotations

import dataclasses

from billing.access import ENTITLED_STATUSES
from billing.overage import overage_terms
from billing.store.meter_sql import write_overage
from billing.store.upgrade_sql import complete_upgrade_links
from billing.subscription_state import ends_access, lifecycle_rank, next_subscription_state, parse_subscription
from billing.webhooks.context import ACTOR, Applied, EventContext, Handler, ignored, processed

ENDED_REASON = "subscription_ended"


async def on_subscription_event(ctx: EventContext) -> Applied:
    """Upsert the subscription unless a newer event was applied; revoke its tokens when it ends."""
    event, tx = ctx.event, ctx.tx
    snapshot = parse_subscription(event.object, ctx.config)
    if event.type == "customer.subscription.deleted":
        snapshot = dataclasses.replace(snapshot, status="canceled")
    current = await tx.subscription(snapshot.subscription_id)
    state = next_subscription_state(current, snapshot, event.created, lifecycle_rank(event.type))
    if state is None:
        if current is None:
            return ignored(f"subscription {snapshot.subscription_id} has no MCP tier (price {snapshot.price_id})")
        return processed(f"stale: subscription {snapshot.subscription_id} already reflects a newer event")
    if current is None:
        user_id = await tx.ensure_stripe_customer(snapshot.customer_id, email=None, name=None,
                                                  event_created=event.created)
    else:
        user_id = current.user_id
    await tx.write_subscription(snapshot.subscription_id, user_id, state)
    overage = overage_terms(event.object, ctx.config.overage_price)
    await write_overage(tx.db, snapshot.subscription_id, item_id=overage.item_id, cap_cents=overage.cap_cents,
                        now=tx.now)
    upgraded: list[str] = []
    tier = ctx.config.tiers.get(state.tier)
    if tier is not None and state.status in ENTITLED_STATUSES:
        reached = [t.name for t in ctx.config.tiers if t.rank <= tier.rank]
        upgraded = await complete_upgrade_links(tx.db, snapshot.subscription_id, reached, now=tx.now)
    revoked = 0
    if ends_access(state.status):
        revoked = await tx.revoke_subscription_tokens(snapshot.subscription_id, ENDED_REASON)
        await tx.expire_claims(snapshot.subscription_id)
    await tx.audit(ACTOR, event.type.removeprefix("customer."), snapshot.subscription_id,
                   f"event={event.id} status={state.status} tier={state.tier} revoked={revoked}"
                   f" overage={'on' if overage.item_id else 'off'} upgrade_links_completed={len(upgraded)}")
    message = f"subscription {snapshot.subscription_id} is {state.status} ({state.tier})"
    return processed(message + (f"; {revoked} token(s) revoked" if revoked else ""))


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": on_subscription_event,
    "customer.subscription.updated": on_subscription_event,
    "customer.subscription.deleted": on_subscription_event,
}
