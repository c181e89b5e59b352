"""SQL of token delivery: redeeming claims, emailed claims and the outbox of mails to send.

`DeliverySQL` is mixed into the store class. Methods that take `db` run inside a write
transaction the caller opened (`store.transaction()`, or a webhook's), so a claim, its welcome
mail and the entitlement commit together; the outbox sender's methods open their own.
`add_email_claim_and_welcome` is also a plain function, for the webhook transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from billing.claims import KIND_EMAIL, ClaimState
from billing.mail.welcome import OutboxMail
from billing.store.connection import Connection, SQLMixin
from billing.store.records import AuditEntry, NewToken

MAX_ERROR_CHARS = 1000
SENT_BODY = "(sent; the body is not kept because it held a claim link)"

_OUTBOX_COLUMNS = ("id, kind, recipient, subject, body_text, body_html, subscription_id, created_at, attempts,"
                   " next_attempt_at, last_error, sent_at, cancelled_at")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    subscription_id: str | None
    created_at: int
    attempts: int
    next_attempt_at: int
    last_error: str | None
    sent_at: int | None
    cancelled_at: int | None

    @property
    def status(self) -> str:
        if self.sent_at is not None:
            return "sent"
        if self.cancelled_at is not None:
            return "cancelled"
        return "retrying" if self.attempts else "pending"


@dataclass(frozen=True, slots=True)
class ResendTarget:
    """The subscription a re-sent claim is for: the customer's most recent Stripe subscription."""

    subscription_id: str
    email: str
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool


async def add_email_claim_and_welcome(db: Connection, *, subscription_id: str, secret_hash: str,
                                      expires_at: int, mail: OutboxMail, now: int) -> int:
    """An `email_code` claim and its welcome mail in the open transaction `db`; returns the outbox id."""
    await db.execute(
        "INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ("clm_" + uuid.uuid4().hex, subscription_id, KIND_EMAIL, secret_hash, expires_at, now))
    rows = list(await db.execute_fetchall(
        "INSERT INTO outbox (kind, recipient, subject, body_text, body_html, subscription_id, created_at,"
        " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (mail.kind, mail.recipient, mail.subject, mail.body_text, mail.body_html, subscription_id, now, now)))
    return int(rows[0][0])


async def end_open_claims(db: Connection, subscription_id: str, *, now: int) -> int:
    """Inside the open transaction `db`: expire an entitlement's unredeemed claims and cancel its unsent
    mails (their links would lead nowhere); returns the number of claims ended."""
    cursor = await db.execute(
        "UPDATE claims SET expires_at = ? WHERE subscription_id = ? AND redeemed_at IS NULL AND expires_at > ?",
        (now, subscription_id, now))
    await db.execute(
        "UPDATE outbox SET cancelled_at = ? WHERE subscription_id = ? AND sent_at IS NULL"
        " AND cancelled_at IS NULL", (now, subscription_id))
    return max(cursor.rowcount, 0)


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
        """Mark every open claim of the entitlement redeemed and store the minted token; returns claims ended."""
        cursor = await db.execute(
            "UPDATE claims SET redeemed_at = ? WHERE subscription_id = ? AND redeemed_at IS NULL",
            (now, claim.subscription_id))
        await self._insert_token(db, token, user_id=claim.user_id, subscription_id=claim.subscription_id)
        await self._audit(db, audit, now=now)
        return max(cursor.rowcount, 0)

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

    async def add_email_claim_and_welcome(self, db: Connection, *, subscription_id: str,
                                          secret_hash: str, expires_at: int, mail: OutboxMail, now: int) -> int:
        return await add_email_claim_and_welcome(db, subscription_id=subscription_id, secret_hash=secret_hash,
                                                 expires_at=expires_at, mail=mail, now=now)

    async def audit_in(self, db: Connection, entry: AuditEntry, *, now: int) -> None:
        await self._audit(db, entry, now=now)

    # ---- the outbox (each its own transaction) ---------------------------------------------

    async def take_due_mail(self, now: int, *, retry_at: Callable[[int], int], limit: int = 10) -> list[OutboxRow]:
        """Take up to `limit` due mails: count the attempt and move each row's next attempt to `retry_at(attempts)`.

        The moved time is a lease: another sender leaves the row alone until then, and if this one
        crashes before `mark_mail_sent`, the mail is sent again at that time.
        """
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE sent_at IS NULL AND cancelled_at IS NULL"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", (now, limit)))
            taken = []
            for row in rows:
                mail = OutboxRow(*row)
                attempts = mail.attempts + 1
                next_at = retry_at(attempts)
                await db.execute("UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                                 (attempts, next_at, mail.id))
                taken.append(replace(mail, attempts=attempts, next_attempt_at=next_at))
            return taken

    async def mark_mail_sent(self, mail_id: int, *, now: int) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET sent_at = ?, last_error = NULL, body_text = ?, body_html = '' WHERE id = ?",
                (now, SENT_BODY, mail_id))

    async def mark_mail_failed(self, mail_id: int, error: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE outbox SET last_error = ? WHERE id = ?", (error[:MAX_ERROR_CHARS], mail_id))

    async def next_mail_due(self) -> int | None:
        """When the earliest pending mail is due (unix seconds), or None when none is pending."""
        rows = list(await self._read.execute_fetchall(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE sent_at IS NULL AND cancelled_at IS NULL"))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def list_outbox(self, *, pending_only: bool = False, limit: int = 200) -> list[OutboxRow]:
        """Mails, oldest first (pending ones only when asked)."""
        where = " WHERE sent_at IS NULL AND cancelled_at IS NULL" if pending_only else ""
        rows = await self._read.execute_fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox{where} ORDER BY id LIMIT ?", (limit,))
        return [OutboxRow(*row) for row in rows]

