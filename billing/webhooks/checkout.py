"""`checkout.session.completed`: the customer, the subscription and a claim to pick the token up with."""

from __future__ import annotations

from collections.abc import Mapping

from billing.access import ENTITLED_STATUSES
from billing.claims import KIND_SESSION, SESSION_CLAIM_TTL_SECONDS, session_claim_hash
from billing.mail.claim_mail import queue_welcome, reserve_expired_email_claim
from billing.store.upgrade_sql import complete_bought_upgrade_link
from billing.subscription_state import ends_access, parse_checkout_session, provisional_state
from billing.upgrade_stripe import LINK_METADATA_KEY
from billing.webhooks.context import ACTOR, Applied, EventContext, Handler, ignored, processed


async def on_checkout_completed(ctx: EventContext) -> Applied:
    """Create or update the customer and the subscription, and a claim bound to the session.

    The subscription written here is provisional: `customer.subscription.*` events override it
    whenever they arrive, before or after this one.
    """
    event, tx = ctx.event, ctx.tx
    session = parse_checkout_session(event.object, ctx.config)
    if session.mode != "subscription" or not session.subscription_id:
        return ignored("the checkout session is not a subscription checkout")
    current = await tx.subscription(session.subscription_id)
    state = provisional_state(current, session.tier, session.provisional_status)
    if current is None and state is None:
        return ignored(f"the checkout session of subscription {session.subscription_id} has no MCP tier "
                       "(its price is not configured and it has no metadata.tier)")
    user_id = await tx.ensure_stripe_customer(session.customer_id, email=session.email, name=session.name,
                                              event_created=event.created,
                                              link_user_id=session.client_reference_id)
    if state is not None:
        await tx.write_subscription(session.subscription_id, current.user_id if current else user_id, state)
    status = state.status if state is not None else current.status if current is not None else "incomplete"
    # A subscription that has already ended gets a claim that is born expired: one row, never usable.
    expires_at = tx.now if ends_access(status) else tx.now + SESSION_CLAIM_TTL_SECONDS
    # The claim is stored by its hash; a replayed (stored) payload names the session by that hash already.
    created = await tx.create_claim(session.subscription_id, kind=KIND_SESSION,
                                    secret_hash=session_claim_hash(session.session_id), expires_at=expires_at)
    tier = state.tier if state is not None else current.tier if current is not None else None
    if created and session.email and tier is not None:
        if ends_access(status):
            # Ended before the checkout arrived: the emailed claim is born expired and no mail goes out,
            # so the claims are the same whichever order the events came in.
            await reserve_expired_email_claim(tx.db, session.subscription_id, now=tx.now)
        elif not await tx.has_delivery(session.subscription_id):
            # The welcome mail joins this transaction (entitlement and mail, or neither); its claim code
            # is generated when it is sent. (A reconciliation that found the subscription first sent it.)
            await queue_welcome(tx.db, subscription_id=session.subscription_id, recipient=session.email, tier=tier,
                                now=tx.now)
            tx.mail_queued = True
    upgraded = await _complete_upgrade_link(ctx, user_id, tier, status)
    await tx.audit(ACTOR, "checkout.completed", session.subscription_id,
                   f"event={event.id} user={user_id} claim={'created' if created else 'exists'}"
                   + (f" upgrade_link={upgraded[0]}" if upgraded else ""))
    return processed(f"subscription {session.subscription_id} recorded for the checkout; "
                     f"claim {'created' if created else 'already present'}")


async def _complete_upgrade_link(ctx: EventContext, user_id: str, tier: str | None, status: str) -> list[str]:
    """The Checkout was opened from an upgrade link (an operator grant's): the link is done once the
    purchase reached its tier."""
    metadata = ctx.event.object.get("metadata")
    link_id = metadata.get(LINK_METADATA_KEY) if isinstance(metadata, Mapping) else None
    bought = ctx.config.tiers.get(tier) if tier is not None else None
    if not isinstance(link_id, str) or bought is None or status not in ENTITLED_STATUSES:
        return []
    reached = [t.name for t in ctx.config.tiers if t.rank <= bought.rank]
    return await complete_bought_upgrade_link(ctx.tx.db, link_id, user_id, reached, now=ctx.tx.now)


HANDLERS: dict[str, Handler] = {"checkout.session.completed": on_checkout_completed}
