"""SQL of the Stripe lifecycle: webhook events, Stripe customers and subscriptions, claims.

`BillingSQL` is mixed into the store class. A webhook is applied through `webhook_transaction()`:
one `BEGIN IMMEDIATE` transaction in which the handler's writes and the event's `processed` mark
commit together or not at all. BEGIN IMMEDIATE serializes writers across processes too, so
checking the event's status inside it makes concurrent deliveries of one event apply it once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from billing.access import ENTITLED_STATUSES
from billing.store.connection import Connection, Row, SQLMixin
from billing.store.delivery_sql import end_open_claims
from billing.store.records import new_user_id
from billing.subscription_state import SubscriptionRow, SubscriptionState

DONE_STATUSES = ("processed", "ignored")
MAX_ERROR_CHARS = 2000

_EVENT_COLUMNS = ("event_id, type, created, livemode, status, attempts, last_error, message, received_at,"
                  " processed_at, source")
EVENT_SOURCES = ("webhook", "recovery")
_SUBSCRIPTION_COLUMNS = ("subscription_id, user_id, tier, status, current_period_end, cancel_at_period_end,"
                         " payment_state, last_event_created, payment_event_created, last_event_rank")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored webhook event (`payload` only when asked for)."""

    event_id: str
    type: str
    created: int
    livemode: bool
    status: str
    attempts: int
    last_error: str | None
    message: str | None
    received_at: int
    processed_at: int | None
    source: str = "webhook"  # how the applied copy reached us: 'webhook' or 'recovery' (GET /v1/events)
    payload: str | None = None


class WebhookTransaction:
    """Named reads and writes for one webhook event, inside one open write transaction."""

    def __init__(self, db: Connection, now: int) -> None:
        self._db = db
        self.now = now
        # Set by a handler that queued a mail in this transaction: the outbox sender is woken for it
        # once the transaction commits (unset, the mail waits for the sender's next poll, not lost).
        self.mail_queued = False

    @property
    def db(self) -> Connection:
        """The open transaction, for writes of other store modules that must join it."""
        return self._db

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit inside the transaction: on an exception its writes alone are undone."""
        await self._db.execute("SAVEPOINT stripe_event")
        try:
            yield
        except BaseException:
            await self._db.execute("ROLLBACK TO stripe_event")
            await self._db.execute("RELEASE stripe_event")
            raise
        await self._db.execute("RELEASE stripe_event")

    # ---- the event row ---------------------------------------------------------------------

    async def event_status(self, event_id: str) -> str | None:
        rows = list(await self._db.execute_fetchall(
            "SELECT status FROM stripe_events WHERE event_id = ?", (event_id,)))
        return str(rows[0][0]) if rows else None

    async def mark_event(self, *, event_id: str, event_type: str, created: int, livemode: bool, payload: str,
                         status: str, message: str, source: str = "webhook") -> None:
        """Record the event as applied (`processed`) or `ignored` by the copy from `source`, counting this attempt."""
        await self._db.execute(
            "INSERT INTO stripe_events (event_id, type, created, livemode, payload, status, attempts, message,"
            " received_at, processed_at, source) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET status = excluded.status, attempts = stripe_events.attempts + 1,"
            " last_error = NULL, message = excluded.message, processed_at = excluded.processed_at,"
            " source = excluded.source",
            (event_id, event_type, created, int(livemode), payload, status, message, self.now, self.now, source),
        )

    # ---- customers -------------------------------------------------------------------------

    async def ensure_stripe_customer(self, stripe_customer_id: str | None, *, email: str | None, name: str | None,
                                     event_created: int, link_user_id: str | None = None) -> str:
        """The user id of a Stripe customer, created if new; email kept current.

        A new Stripe customer joins an existing user (e.g. an operator-grant holder) only when
        `link_user_id` names one, which checkout passes from the session's `client_reference_id` —
        set only for a signed-in buyer. An email alone never links accounts: anyone can type one.
        An older event than the one that last set the email does not overwrite it.

        Raises:
            ValueError: neither a Stripe customer id nor an email to know the customer by.
        """
        if stripe_customer_id:
            rows = list(await self._db.execute_fetchall(
                "SELECT user_id FROM customers WHERE stripe_customer_id = ?", (stripe_customer_id,)))
            if rows:
                user_id = str(rows[0][0])
                if email:
                    await self._set_email(user_id, email, name, event_created)
                return user_id
        if link_user_id:
            rows = list(await self._db.execute_fetchall(
                "SELECT user_id FROM customers WHERE user_id = ? AND stripe_customer_id IS NULL", (link_user_id,)))
            if rows:
                user_id = str(rows[0][0])
                await self._db.execute(
                    "UPDATE customers SET stripe_customer_id = ?, name = COALESCE(?, name), last_event_created = ?,"
                    " updated_at = ? WHERE user_id = ?",
                    (stripe_customer_id, name, event_created, self.now, user_id))
                return user_id
        if not stripe_customer_id and not email:
            raise ValueError("the event names neither a customer nor an email")
        user_id = new_user_id()
        await self._db.execute(
            "INSERT INTO customers (user_id, email, name, stripe_customer_id, created_at, updated_at,"
            " last_event_created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, email or "", name, stripe_customer_id, self.now, self.now, event_created if email else None))
        return user_id

    async def sync_customer_email(self, stripe_customer_id: str, *, email: str, name: str | None, observed_at: int,
                                  read: bool) -> bool:
        """Keep a known Stripe customer's email current; False if unknown or the store has newer.

        An event (`read` false) wins over one of the same second, as in `ensure_stripe_customer`; a
        read dated `observed_at` reflects only the events before that second, so it does not.
        """
        newer = "<" if read else "<="
        cursor = await self._db.execute(
            "UPDATE customers SET email = ?, name = COALESCE(?, name), last_event_created = ?, updated_at = ?"
            f" WHERE stripe_customer_id = ? AND (last_event_created IS NULL OR last_event_created {newer} ?)",
            (email, name, observed_at, self.now, stripe_customer_id, observed_at))
        return cursor.rowcount == 1

    async def _set_email(self, user_id: str, email: str, name: str | None, event_created: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE customers SET email = ?, name = COALESCE(?, name), last_event_created = ?, updated_at = ?"
            " WHERE user_id = ? AND (last_event_created IS NULL OR last_event_created <= ?)",
            (email, name, event_created, self.now, user_id, event_created))
        return cursor.rowcount == 1

    # ---- subscriptions ---------------------------------------------------------------------

    async def subscription(self, subscription_id: str) -> SubscriptionRow | None:
        rows = list(await self._db.execute_fetchall(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE subscription_id = ?", (subscription_id,)))
        return _subscription_row(rows[0]) if rows else None

    async def write_subscription(self, subscription_id: str, user_id: str, state: SubscriptionState) -> None:
        """Create or update a Stripe subscription (our id is the Stripe id) with `state`."""
        await self._db.execute(
            "INSERT INTO subscriptions (subscription_id, kind, stripe_subscription_id, user_id, tier, status,"
            " current_period_end, cancel_at_period_end, last_event_created, last_event_rank, created_at, updated_at)"
            " VALUES (?, 'stripe', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (subscription_id) DO UPDATE SET tier = excluded.tier, status = excluded.status,"
            " current_period_end = excluded.current_period_end,"
            " cancel_at_period_end = excluded.cancel_at_period_end,"
            " last_event_created = excluded.last_event_created, last_event_rank = excluded.last_event_rank,"
            " updated_at = excluded.updated_at",
            (subscription_id, subscription_id, user_id, state.tier, state.status, state.current_period_end,
             int(state.cancel_at_period_end), state.last_event_created, state.last_event_rank, self.now, self.now))

    async def set_payment_state(self, subscription_id: str, payment_state: str, *, event_created: int) -> bool:
        """Record an invoice's outcome on its subscription; False if a newer invoice event was applied."""
        cursor = await self._db.execute(
            "UPDATE subscriptions SET payment_state = ?, payment_event_created = ?, updated_at = ?"
            " WHERE subscription_id = ? AND (payment_event_created IS NULL OR payment_event_created <= ?)",
            (payment_state, event_created, self.now, subscription_id, event_created))
        return cursor.rowcount == 1

    async def revoke_subscription_tokens(self, subscription_id: str, reason: str) -> int:
        """Revoke every live token of a subscription; the next call with any of them is refused."""
        cursor = await self._db.execute(
            "UPDATE tokens SET revoked_at = ?, revoked_reason = ? WHERE subscription_id = ? AND revoked_at IS NULL",
            (self.now, reason, subscription_id))
        return max(cursor.rowcount, 0)

    # ---- claims ----------------------------------------------------------------------------

    async def create_claim(self, subscription_id: str, *, kind: str, secret_hash: str, expires_at: int) -> bool:
        """A single-use claim whose secret hashes to `secret_hash`; False when it already exists."""
        cursor = await self._db.execute(
            "INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (secret_hash) DO NOTHING",
            ("clm_" + uuid.uuid4().hex, subscription_id, kind, secret_hash, expires_at, self.now))
        return cursor.rowcount == 1

    async def has_delivery(self, subscription_id: str) -> bool:
        """Whether the customer was ever given a way in: an emailed claim (its welcome mail) or a token."""
        rows = list(await self._db.execute_fetchall(
            "SELECT 1 FROM claims WHERE subscription_id = ? AND kind = 'email_code'"
            " UNION ALL SELECT 1 FROM tokens WHERE subscription_id = ? LIMIT 1", (subscription_id, subscription_id)))
        return bool(rows)

    async def expire_claims(self, subscription_id: str) -> int:
        """End the unredeemed claims of a subscription whose access has ended, and its unsent mails."""
        return await end_open_claims(self._db, subscription_id, now=self.now)

    # ---- audit -----------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, subject: str | None, detail: str | None = None) -> None:
        await self._db.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (self.now, actor, action, subject, detail))


class BillingSQL(SQLMixin):
    """Store operations of the Stripe lifecycle (mixed into the store class)."""

    @asynccontextmanager
    async def webhook_transaction(self, now: int) -> AsyncIterator[WebhookTransaction]:
        """One write transaction for one event: everything in it commits together, or nothing does."""
        async with self.transaction() as db:
            yield WebhookTransaction(db, now)

    async def event_status(self, event_id: str) -> str | None:
        """The stored status of an event, read outside any transaction (a hint, not a lock)."""
        rows = list(await self._read.execute_fetchall(
            "SELECT status FROM stripe_events WHERE event_id = ?", (event_id,)))
        return str(rows[0][0]) if rows else None

    async def record_event_failure(self, *, event_id: str, event_type: str, created: int, livemode: bool,
                                   payload: str, error: str, now: int, source: str = "webhook") -> None:
        """Mark an event `failed` with its error, counting the attempt (its own transaction)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO stripe_events (event_id, type, created, livemode, payload, status, attempts,"
                " last_error, received_at, source) VALUES (?, ?, ?, ?, ?, 'failed', 1, ?, ?, ?)"
                " ON CONFLICT (event_id) DO UPDATE SET status = 'failed', attempts = stripe_events.attempts + 1,"
                " last_error = excluded.last_error WHERE stripe_events.status NOT IN ('processed', 'ignored')",
                (event_id, event_type, created, int(livemode), payload, error[:MAX_ERROR_CHARS], now, source))

    async def list_events(self, *, status: str | None = None, event_type: str | None = None,
                          source: str | None = None, limit: int = 100) -> list[EventRecord]:
        """Stored events, newest first."""
        clauses, params = [], []
        for column, value in (("status", status), ("type", event_type), ("source", source)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._read.execute_fetchall(
            f"SELECT {_EVENT_COLUMNS} FROM stripe_events{where} ORDER BY created DESC, event_id LIMIT ?",
            (*params, limit))
        return [_event_record(row) for row in rows]

    async def event_statuses(self, event_ids: Sequence[str]) -> dict[str, str]:
        """The stored status of each of `event_ids` that the store holds."""
        if not event_ids:
            return {}
        marks = ", ".join("?" for _ in event_ids)
        rows = await self._read.execute_fetchall(
            f"SELECT event_id, status FROM stripe_events WHERE event_id IN ({marks})", tuple(event_ids))
        return {str(event_id): str(status) for event_id, status in rows}

    async def get_event(self, event_id: str) -> EventRecord | None:
        """One stored event with its payload."""
        rows = list(await self._read.execute_fetchall(
            f"SELECT {_EVENT_COLUMNS}, payload FROM stripe_events WHERE event_id = ?", (event_id,)))
        return _event_record(rows[0]) if rows else None

    async def active_subscriptions_by_tier(self, now: int) -> dict[tuple[str, str], int]:
        """(kind, tier) → number of subscriptions that grant access now."""
        statuses = ", ".join("?" for _ in ENTITLED_STATUSES)
        rows = await self._read.execute_fetchall(
            f"SELECT kind, tier, COUNT(*) FROM subscriptions WHERE status IN ({statuses})"
            " AND NOT (cancel_at_period_end = 1 AND current_period_end IS NOT NULL AND current_period_end <= ?)"
            " GROUP BY kind, tier", (*sorted(ENTITLED_STATUSES), now))
        return {(str(kind), str(tier)): int(count) for kind, tier, count in rows}


def _subscription_row(row: Row) -> SubscriptionRow:
    values: list[Any] = list(row)
    values[5] = bool(values[5])
    return SubscriptionRow(*values)


def _event_record(row: Row) -> EventRecord:
    values: list[Any] = list(row)
    values[3] = bool(values[3])
    return EventRecord(*values)
