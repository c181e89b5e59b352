"""Token delivery: redeeming a claim mints the token; re-sending a customer's claim mail.

    delivery = Delivery(store, codec, public_url=..., support_email=...)
    issued = await delivery.redeem(claim_code="...")          # or session_id="cs_..."; raises ClaimRefused
    await delivery.resend(email)                             # new emailed claim, the old ones dead

Redemption is one write transaction: the claim is read, judged (`billing.claims`), every claim of
the entitlement is marked redeemed and the token row inserted, or nothing is written. The token
itself is only returned, never stored or logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from billing.access import entitlement_ended
from billing.authority import SECONDS_PER_DAY, IssuedToken, normalize_email
from billing.claims import ClaimRefusal, claim_hash, decide_redemption, is_claim_code, is_session_id, unknown_claim
from billing.claude_config import claude_desktop_config
from billing.errors import BillingError, NotFoundError
from billing.mail.claim_mail import queue_welcome
from billing.store import Store
from billing.store.records import AuditEntry, NewToken
from billing.tiers import is_tier
from billing.tokens import TokenCodec, token_hash


class ClaimRefused(BillingError):
    """A claim that mints no token; `refusal` holds the HTTP status, code and message."""

    def __init__(self, refusal: ClaimRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Resent:
    subscription_id: str
    recipient: str
    outbox_id: int
    claims_ended: int


class Delivery:
    def __init__(self, store: Store, codec: TokenCodec, *, public_url: str, support_email: str,
                 token_expiry_days: int = 365, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._codec = codec
        self.public_url = public_url.rstrip("/")
        self.support_email = support_email
        self._expiry_days = token_expiry_days
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    @property
    def pricing_url(self) -> str:
        return f"{self.public_url}/pricing"

    def claude_config(self, token: str) -> dict[str, object]:
        return claude_desktop_config(token, public_url=self.public_url)

    async def redeem(self, *, session_id: str | None = None, claim_code: str | None = None,
                     actor: str = "claim") -> IssuedToken:
        """Mint the token an unused, unexpired claim stands for, ending every claim of its entitlement.

        Raises:
            ClaimRefused: unknown secret (404), already redeemed or expired (410), no access (403).
        """
        secret = session_id if session_id is not None else claim_code
        well_formed = is_session_id(secret) if session_id is not None else is_claim_code(secret)
        if secret is None or not well_formed:
            raise ClaimRefused(unknown_claim())
        now = self.now()
        async with self.store.transaction() as db:
            claim = await self.store.claim_for_redemption(db, claim_hash(secret))
            refusal = decide_redemption(claim, now, support_email=self.support_email, pricing_url=self.pricing_url)
            if refusal is not None:
                raise ClaimRefused(refusal)
            assert claim is not None
            expires_at = now + self._expiry_days * SECONDS_PER_DAY
            token, claims = self._codec.mint(sub=claim.user_id, tier=claim.tier, sid=claim.subscription_id, now=now,
                                             expires_at=expires_at)
            new = NewToken(claims.jti, claim.user_id, claim.subscription_id, token_hash(token), now, expires_at)
            await self.store.redeem_claim(db, claim, new, now=now, audit=AuditEntry(
                actor, "claim.redeem", claim.subscription_id, f"claim={claim.claim_id} kind={claim.kind} "
                                                              f"token={claims.jti}"))
        return IssuedToken(token, claims.jti, claim.user_id, claim.subscription_id, claim.tier, expires_at)

    async def resend(self, email: str, *, actor: str = "operator") -> Resent:
        """A new emailed claim for the customer's latest subscription; its earlier open claims and unsent mails end.

        Raises:
            ConfigurationError: not an email address.
            NotFoundError: no Stripe subscription for that email, or it grants no access now.
        """
        email = normalize_email(email)
        now = self.now()
        async with self.store.transaction() as db:
            target = await self.store.resend_target(db, email)
            if target is None:
                raise NotFoundError(f"no Stripe subscription for {email}")
            ended = entitlement_ended(target.status, target.current_period_end, target.cancel_at_period_end, now)
            if ended is not None:
                raise NotFoundError(f"no claim sent to {email}: {ended}")
            if not is_tier(target.tier):
                raise NotFoundError(f"subscription {target.subscription_id} has an unknown tier {target.tier!r}")
            claims_ended = await self.store.end_open_claims(db, target.subscription_id, now=now)
            outbox_id = await queue_welcome(db, subscription_id=target.subscription_id, recipient=target.email,
                                            tier=target.tier, now=now, resent=True)
            await self.store.audit_in(db, AuditEntry(actor, "claim.resend", target.subscription_id,
                                                     f"outbox={outbox_id} ended={claims_ended}"), now=now)
        return Resent(target.subscription_id, target.email, outbox_id, claims_ended)

