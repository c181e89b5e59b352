"""SQL of token delivery: redeeming claims and the emailed claims that welcome mails carry.

`DeliverySQL` is mixed into the store class. Methods that take `db` run inside a write
transaction the caller opened (`store.transaction()`, or a webhook's), so a claim, its mail and
the entitlement commit together. An emailed claim is *reserved* when its mail is queued (no
secret yet) and *sealed* with the hash of its code when the mail is sent: the code itself is never
stored. The module functions are for transactions opened by other store modules (the webhook's).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from billing.claims import KIND_EMAIL, ClaimState
from billing.store.connection import Connection, SQLMixin
from billing.store.records import AuditEntry, NewToken


@dataclass(frozen=True, slots=True)
class ResendTarget:
    """The subscription a re-sent claim is for: the customer's most recent Stripe subscription."""

    subscription_id: str
    email: str
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool


@dataclass(frozen=True, slots=True)
class ReservedClaim:
    """An emailed claim as its mail's composer sees it, with its entitlement's state."""

    claim_id: str
    subscription_id: str
    secret_hash: str | None  # None until its mail is first sent
    expires_at: int
    redeemed_at: int | None  # set when any claim of the entitlement was redeemed
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool


async def reserve_email_claim(db: Connection, subscription_id: str, *, expires_at: int, now: int) -> str:
    """Inside the open transaction `db`: an emailed claim without a secret yet; returns its id."""
    claim_id = "clm_" + uuid.uuid4().hex
    await db.execute(
        "INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)"
        " VALUES (?, ?, ?, NULL, ?, ?)", (claim_id, subscription_id, KIND_EMAIL, expires_at, now))
    return claim_id


async def end_open_claims(db: Connection, subscription_id: str, *, now: int) -> int:
    """Inside the open transaction `db`: expire an entitlement's unredeemed claims and cancel its unsent
    mails (their links would lead nowhere); returns the number of claims ended."""
    cursor = await db.execute(
        "UPDATE claims SET expires_at = ? WHERE subscription_id = ? AND redeemed_at IS NULL AND expires_at > ?",
        (now, subscription_id, now))
    await db.execute(
        "UPDATE outbox SET cancelled_at = ? WHERE subscription_id = ? AND sent_at IS NULL"
        " AND cancelled_at IS NULL", (now, subscription_id))
    return max(int(cursor.rowcount), 0)


class DeliverySQL(SQLMixin):
    """Store operations of token delivery (mixed into the store class)."""

    if TYPE_CHECKING:  # provided by CoreSQL in the store class
        async def _insert_token(self, db: Connection, token: NewToken, *, user_id: str,
                                subscription_id: str) -> None: ...

        async def _audit(self, db: Connection, entry: AuditEntry, *, now: int) -> None: ...

    # ---- claims (inside the caller's transaction) ------------------------------------------

    async def claim_for_redemption(self, db: Connection, secret_hash: str) -> ClaimState | None:
        rows = list(await db.execute_fetchall(
            "SELECT c.claim_id, c.subscription_id, c.kind, c.expires_at, c.redeemed_at, s.user_id, u.email, s.tier,"
            " s.status, s.current_period_end, s.cancel_at_period_end"
            " FROM claims AS c JOIN subscriptions AS s ON s.subscription_id = c.subscription_id"
            " JOIN customers AS u ON u.user_id = s.user_id WHERE c.secret_hash = ?", (secret_hash,)))
        if not rows:
            return None
        values = list(rows[0])
        values[10] = bool(values[10])
        return ClaimState(*values)

    async def redeem_claim(self, db: Connection, claim: ClaimState, token: NewToken, *, now: int,
                           audit: AuditEntry) -> int:
        """Mark every open claim of the entitlement redeemed (reserved ones too: their mails then say the token
        was revealed) and store the minted token; returns claims ended."""
        cursor = await db.execute(
            "UPDATE claims SET redeemed_at = ? WHERE subscription_id = ? AND redeemed_at IS NULL",
            (now, claim.subscription_id))
        await self._insert_token(db, token, user_id=claim.user_id, subscription_id=claim.subscription_id)
        await self._audit(db, audit, now=now)
        return max(int(cursor.rowcount), 0)

    async def reserved_email_claim(self, db: Connection, claim_id: str) -> ReservedClaim | None:
        rows = list(await db.execute_fetchall(
            "SELECT c.claim_id, c.subscription_id, c.secret_hash, c.expires_at, c.redeemed_at, s.tier, s.status,"
            " s.current_period_end, s.cancel_at_period_end"
            " FROM claims AS c JOIN subscriptions AS s ON s.subscription_id = c.subscription_id"
            " WHERE c.claim_id = ? AND c.kind = ?", (claim_id, KIND_EMAIL)))
        if not rows:
            return None
        values = list(rows[0])
        values[8] = bool(values[8])
        return ReservedClaim(*values)

    async def seal_email_claim(self, db: Connection, claim: ReservedClaim, secret_hash: str, *, expires_at: int,
                               now: int) -> None:
        """Give a reserved claim the hash of the code its mail carries now.

        A mail sent again (its first attempt may or may not have arrived) carries a new code: it gets a
        sibling claim of its own, so every code that may have reached the customer works, once.
        """
        if claim.secret_hash is None:
            cursor = await db.execute(
                "UPDATE claims SET secret_hash = ?, expires_at = ? WHERE claim_id = ? AND secret_hash IS NULL",
                (secret_hash, expires_at, claim.claim_id))
            if cursor.rowcount == 1:
                return
        await db.execute(
            "INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ("clm_" + uuid.uuid4().hex, claim.subscription_id, KIND_EMAIL, secret_hash, expires_at, now))

    async def resend_target(self, db: Connection, email: str) -> ResendTarget | None:
        rows = list(await db.execute_fetchall(
            "SELECT s.subscription_id, c.email, s.tier, s.status, s.current_period_end, s.cancel_at_period_end"
            " FROM subscriptions AS s JOIN customers AS c ON c.user_id = s.user_id"
            " WHERE c.email = ? AND s.kind = 'stripe' ORDER BY s.created_at DESC, s.subscription_id LIMIT 1",
            (email,)))
        if not rows:
            return None
        values = list(rows[0])
        values[5] = bool(values[5])
        return ResendTarget(*values)

    async def end_open_claims(self, db: Connection, subscription_id: str, *, now: int) -> int:
        """Expire the unredeemed claims of an entitlement and cancel its unsent mails; returns claims ended."""
        return await end_open_claims(db, subscription_id, now=now)

    async def audit_in(self, db: Connection, entry: AuditEntry, *, now: int) -> None:
        await self._audit(db, entry, now=now)
