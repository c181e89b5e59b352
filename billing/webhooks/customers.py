"""`customer.created|updated`: keep the customer's email (and name) in sync with Stripe."""

from __future__ import annotations

from billing.webhooks.context import ACTOR, Applied, EventContext, Handler, ignored, processed


async def on_customer_event(ctx: EventContext) -> Applied:
    event, tx = ctx.event, ctx.tx
    customer_id, email, name = (event.object.get(k) for k in ("id", "email", "name"))
    if not isinstance(customer_id, str) or not isinstance(email, str) or not email.strip():
        return ignored("the customer has no id or email")
    user_id = await tx.ensure_stripe_customer(customer_id, email=email.strip().lower(),
                                              name=name if isinstance(name, str) and name else None,
                                              event_created=event.created)
    await tx.audit(ACTOR, event.type, user_id, f"event={event.id}")
    return processed(f"customer {customer_id} is in sync")


HANDLERS: dict[str, Handler] = {
    "customer.created": on_customer_event,
    "customer.updated": on_customer_event,
}
