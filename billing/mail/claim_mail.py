"""The welcome mail and its claim link: queued with the entitlement, composed when it is sent.

    mail_id = await queue_welcome(db, subscription_id=..., recipient=..., tier=..., now=...)  # webhook, resend
    composers = claim_mail_composers(public_url=..., support_email=...)                       # for the sender

Queuing reserves an emailed claim with no secret. Sending decides by the state it finds then:
- the token was already revealed (a claim of the entitlement was redeemed): a mail that says so,
  how to rotate and where to get help, with no link (the link would answer 410);
- the subscription has ended: the mail is cancelled; its payment is still pending: it waits;
- otherwise a fresh claim code, valid 7 days from now, whose hash seals the reserved claim.
"""

from __future__ import annotations

import json
from typing import Any

from billing.access import entitlement_ended
from billing.claims import EMAIL_CLAIM_TTL_SECONDS
from billing.mail.compose import Composed, Composer, Composers, LinkSecret
from billing.mail.welcome import KIND_WELCOME, claim_url, revealed_mail, welcome_mail, welcome_subject
from billing.store.delivery_sql import reserve_email_claim
from billing.store.outbox_sql import OutboxRow, queue_mail
from billing.subscription_state import ends_access


async def queue_welcome(db: Any, *, subscription_id: str, recipient: str, tier: str, now: int,
                        resent: bool = False) -> int:
    """Inside the open transaction `db`: reserve an emailed claim and queue its welcome mail; the mail's id."""
    claim_id = await reserve_email_claim(db, subscription_id, expires_at=now + EMAIL_CLAIM_TTL_SECONDS, now=now)
    return await queue_mail(db, kind=KIND_WELCOME, recipient=recipient, subject=welcome_subject(tier, resent=resent),
                            subscription_id=subscription_id, link_id=claim_id,
                            params=json.dumps({"resent": resent}), now=now)


async def reserve_expired_email_claim(db: Any, subscription_id: str, *, now: int) -> None:
    """An emailed claim born expired, and no mail: for an entitlement that ended before its checkout arrived."""
    await reserve_email_claim(db, subscription_id, expires_at=now, now=now)


def claim_mail_composers(*, public_url: str, support_email: str) -> Composers:
    """The composers of the mails token delivery sends."""
    return Composers({KIND_WELCOME: welcome_composer(public_url=public_url, support_email=support_email)})


def welcome_composer(*, public_url: str, support_email: str) -> Composer:
    async def compose(store: Any, db: Any, row: OutboxRow, now: int) -> Composed:
        claim = await store.reserved_email_claim(db, row.link_id) if row.link_id else None
        if claim is None:
            return Composed.cancel("the claim this mail was to carry no longer exists")
        if ends_access(claim.status):
            return Composed.cancel(f"the subscription has ended (its status is {claim.status})")
        if claim.redeemed_at is not None:
            return Composed(revealed_mail(recipient=row.recipient, tier=claim.tier, revealed_at=claim.redeemed_at,
                                          public_url=public_url, support_email=support_email))
        ended = entitlement_ended(claim.status, claim.current_period_end, claim.cancel_at_period_end, now)
        if ended is not None:
            if claim.status == "incomplete":
                return Composed.defer(ended)  # the link would only answer 403 until the payment completes
            return Composed.cancel(ended)
        secret = LinkSecret.new()
        expires_at = now + EMAIL_CLAIM_TTL_SECONDS
        await store.seal_email_claim(db, claim, secret.digest, expires_at=expires_at, now=now)
        resent = json.loads(row.params or "{}").get("resent") is True
        return Composed(welcome_mail(recipient=row.recipient, tier=claim.tier,
                                     claim_link=claim_url(public_url, secret.secret), public_url=public_url,
                                     support_email=support_email, expires_at=expires_at, resent=resent))

    return compose
