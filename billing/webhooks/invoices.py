"""`invoice.payment_succeeded|failed`: the payment state of the subscription (access follows its status)."""

from __future__ import annotations

from billing.subscription_state import SubscriptionState, parse_invoice, payment_state_for
from billing.webhooks.context import ACTOR, Applied, EventContext, Handler, ignored, processed


async def on_invoice_payment(ctx: EventContext) -> Applied:
    """Set or clear the past_due flag, unless a newer invoice event already did.

    An invoice can arrive before anything else about its subscription; it then creates the
    subscription provisionally, without access, for the subscription events to complete.
    """
    event, tx = ctx.event, ctx.tx
    invoice = parse_invoice(event.object, ctx.config)
    if invoice.subscription_id is None:
        return ignored(f"invoice {invoice.invoice_id} is not for a subscription")
    current = await tx.subscription(invoice.subscription_id)
    if current is None:
        if invoice.tier is None:
            return ignored(f"invoice {invoice.invoice_id}: unknown subscription without an MCP price")
        user_id = await tx.ensure_stripe_customer(invoice.customer_id, email=invoice.email, name=invoice.name,
                                                  event_created=event.created)
        await tx.write_subscription(invoice.subscription_id, user_id,
                                    SubscriptionState(invoice.tier, "incomplete", None, False, None))
    payment_state = payment_state_for(event.type)
    if not await tx.set_payment_state(invoice.subscription_id, payment_state, event_created=event.created):
        return processed(f"stale: subscription {invoice.subscription_id} already reflects a newer invoice")
    await tx.audit(ACTOR, event.type, invoice.subscription_id, f"event={event.id} invoice={invoice.invoice_id}")
    return processed(f"subscription {invoice.subscription_id} payment state is {payment_state}")


HANDLERS: dict[str, Handler] = {
    "invoice.payment_succeeded": on_invoice_payment,
    "invoice.payment_failed": on_invoice_payment,
}
