"""SQL of the outbox: the mails the server must send, kept as what renders them, never as bodies.

`OutboxSQL` is mixed into the store class. A mail is queued (`queue_mail`) inside the transaction
of the decision that causes it, with its kind, recipient, a provisional subject, the link row it
will carry (`link_id`) and render parameters (`params`, JSON). The sender takes due rows under a
lease, composes each mail when it sends it (a link's secret is generated then; only its hash is
stored) and marks it sent, or cancels it when it no longer fits the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from billing.store.connection import Connection, SQLMixin

MAX_ERROR_CHARS = 1000

_OUTBOX_COLUMNS = ("id, kind, recipient, subject, body_text, body_html, subscription_id, created_at, attempts,"
                   " next_attempt_at, last_error, sent_at, cancelled_at, link_id, params")
_PENDING = "sent_at IS NULL AND cancelled_at IS NULL"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    recipient: str
    subject: str
    body_text: str  # empty unless a mail was queued whole (one that carries no secret)
    body_html: str
    subscription_id: str | None
    created_at: int
    attempts: int
    next_attempt_at: int
    last_error: str | None
    sent_at: int | None
    cancelled_at: int | None
    link_id: str | None = None
    params: str = "{}"

    @property
    def status(self) -> str:
        if self.sent_at is not None:
            return "sent"
        if self.cancelled_at is not None:
            return "cancelled"
        return "retrying" if self.attempts else "pending"


async def queue_mail(db: Connection, *, kind: str, recipient: str, subject: str, subscription_id: str | None,
                     now: int, link_id: str | None = None, params: str = "{}", body_text: str = "",
                     body_html: str = "") -> int:
    """Queue a mail in the open transaction `db`, due now; returns its id.

    A mail carrying a secret link is queued without a body: its kind's composer renders it when it
    is sent. A mail with no secret may be queued whole (`body_text`, `body_html`).
    """
    rows = list(await db.execute_fetchall(
        "INSERT INTO outbox (kind, recipient, subject, body_text, body_html, subscription_id, created_at,"
        " next_attempt_at, link_id, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (kind, recipient, subject, body_text, body_html, subscription_id, now, now, link_id, params)))
    return int(rows[0][0])


class OutboxSQL(SQLMixin):
    """Store operations of the outbox (mixed into the store class)."""

    async def take_due_mail(self, now: int, *, retry_at: Callable[[int], int], limit: int = 10,
                            mail_id: int | None = None) -> list[OutboxRow]:
        """Take up to `limit` due mails (or the pending mail `mail_id`, due or not): count the attempt and
        move each row's next attempt to `retry_at(attempts)`.

        The moved time is a lease: another sender leaves the row alone until then, and if this one
        crashes before `mark_mail_sent`, the mail is sent again at that time.
        """
        async with self.transaction() as db:
            if mail_id is None:
                rows = list(await db.execute_fetchall(
                    f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE {_PENDING} AND next_attempt_at <= ?"
                    " ORDER BY next_attempt_at, id LIMIT ?", (now, limit)))
            else:
                rows = list(await db.execute_fetchall(
                    f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE {_PENDING} AND id = ?", (mail_id,)))
            taken = []
            for row in rows:
                mail = OutboxRow(*row)
                attempts = mail.attempts + 1
                next_at = retry_at(attempts)
                await db.execute("UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                                 (attempts, next_at, mail.id))
                taken.append(replace(mail, attempts=attempts, next_attempt_at=next_at))
            return taken

    async def mail_is_pending(self, db: Connection, mail_id: int) -> bool:
        """Inside the open transaction `db`: whether the mail is neither sent nor cancelled."""
        rows = list(await db.execute_fetchall(f"SELECT 1 FROM outbox WHERE id = ? AND {_PENDING}", (mail_id,)))
        return bool(rows)

    async def mark_mail_sent(self, mail_id: int, *, now: int, subject: str | None = None) -> None:
        """Sent: record when and under which subject; a body queued whole is not kept."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET sent_at = ?, last_error = NULL, subject = COALESCE(?, subject), body_text = '',"
                " body_html = '' WHERE id = ?", (now, subject, mail_id))

    async def mark_mail_failed(self, mail_id: int, error: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE outbox SET last_error = ? WHERE id = ?", (error[:MAX_ERROR_CHARS], mail_id))

    async def cancel_mail(self, mail_id: int, reason: str, *, now: int) -> None:
        """Never send this mail (it no longer fits the state); `reason` is kept as its last error."""
        async with self.transaction() as db:
            await db.execute(f"UPDATE outbox SET cancelled_at = ?, last_error = ? WHERE id = ? AND {_PENDING}",
                             (now, reason[:MAX_ERROR_CHARS], mail_id))

    async def next_mail_due(self) -> int | None:
        """When the earliest pending mail is due (unix seconds), or None when none is pending."""
        rows = list(await self._read.execute_fetchall(f"SELECT MIN(next_attempt_at) FROM outbox WHERE {_PENDING}"))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def get_mail(self, mail_id: int) -> OutboxRow | None:
        rows = list(await self._read.execute_fetchall(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?",
                                                      (mail_id,)))
        return OutboxRow(*rows[0]) if rows else None

    async def list_outbox(self, *, pending_only: bool = False, limit: int = 200) -> list[OutboxRow]:
        """Mails, oldest first (pending ones only when asked)."""
        where = f" WHERE {_PENDING}" if pending_only else ""
        rows = await self._read.execute_fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox{where} ORDER BY id LIMIT ?", (limit,))
        return [OutboxRow(*row) for row in rows]
