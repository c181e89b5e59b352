"""SQL of metered overage: the meter-event outbox, and the overage opt-in and cap of subscriptions.

`MeterSQL` is mixed into the store classes. A meter event row is written by the statement that
admits and counts its call (see the call counters); the sender here takes due rows under a lease
(`take_due_meter_events` moves `next_attempt_at` past the request, which is also the retry time),
posts them, and records every outcome of a batch in one transaction. Functions that take `db` run
inside a transaction the caller opened (a webhook's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from billing.quota import Windows
from billing.store.call_sql import REFUND_SQL, refund_params
from billing.store.connection import Connection, SQLMixin

MAX_ERROR_CHARS = 1000
METER_STATUSES = ("pending", "sent", "voided", "cancel_pending", "cancelled", "failed")
# Calls the customer pays for (or will, once sent): not voided, not cancelled.
BILLABLE_STATUSES = ("pending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class MeterEventRow:
    """A meter event as the sender takes it: what to send (or cancel) and for which Stripe customer."""

    identifier: str
    subscription_id: str
    stripe_customer_id: str | None
    occurred_at: int
    status: str  # "pending": send it; "cancel_pending": cancel it
    attempts: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class MeterOutcomes:
    """What one sending pass learned, recorded in one transaction."""

    sent: list[str]
    cancelled: list[str]
    failed: list[tuple[str, str]]  # (identifier, error): Stripe refused it for good
    uncancellable: list[tuple[str, str]]  # a cancellation Stripe refused for good: the event stays billed
    retry: list[tuple[str, str, int]]  # (identifier, error, next attempt)


@dataclass(frozen=True, slots=True)
class OverageAccount:
    """A customer's Stripe subscription as the overage commands see it."""

    subscription_id: str
    email: str
    stripe_customer_id: str | None
    tier: str
    status: str
    current_period_end: int | None
    overage_item_id: str | None
    overage_cap_cents: int | None


@dataclass(frozen=True, slots=True)
class OverageUsage:
    """Overage calls of one subscription in one billing period, by what became of them."""

    billable: int
    pending: int
    sent: int
    failed: int
    voided: int


async def void_meter_event(db: Connection, identifier: str, *, now: int) -> str | None:
    """Inside the open transaction `db`: `MeterSQL.void_meter_event`, and the call no longer counts
    against its subscription's spend cap."""
    rows = list(await db.execute_fetchall(
        "UPDATE meter_events SET"
        " status = CASE WHEN status = 'pending' AND attempts = 0 THEN 'voided' ELSE 'cancel_pending' END,"
        " cancelled_at = CASE WHEN status = 'pending' AND attempts = 0 THEN ? ELSE cancelled_at END,"
        " next_attempt_at = CASE WHEN status = 'sent' THEN ? ELSE next_attempt_at END"
        " WHERE identifier = ? AND status IN ('pending', 'sent') RETURNING status, subscription_id, period_end",
        (now, now, identifier)))
    if not rows:
        return None
    status, subscription_id, period_end = rows[0]
    await db.execute("UPDATE usage SET overage_count = overage_count - 1 WHERE subscription_id = ?"
                     " AND overage_period = ? AND overage_count > 0", (subscription_id, period_end or 0))
    return str(status)


async def write_overage(db: Connection, subscription_id: str, *, item_id: str | None, cap_cents: int | None,
                        now: int) -> None:
    """Inside the open transaction `db`: the subscription's overage opt-in (its metered item) and cap."""
    await db.execute(
        "UPDATE subscriptions SET overage_item_id = ?, overage_cap_cents = ?, updated_at = ? WHERE subscription_id = ?",
        (item_id, cap_cents, now, subscription_id))


class MeterSQL(SQLMixin):
    """Store operations of the meter-event outbox and overage accounts (mixed into the store classes)."""

    # ---- the sender ------------------------------------------------------------------------

    async def take_due_meter_events(self, now: int, *, lease_until: int, limit: int) -> list[MeterEventRow]:
        """Take up to `limit` due events (to send or to cancel), counting the attempt and leasing them."""
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(
                "SELECT m.identifier, m.subscription_id, c.stripe_customer_id, m.occurred_at, m.status, m.attempts,"
                " m.sent_at FROM meter_events AS m"
                " JOIN subscriptions AS s ON s.subscription_id = m.subscription_id"
                " JOIN customers AS c ON c.user_id = s.user_id"
                " WHERE m.status IN ('pending', 'cancel_pending') AND m.next_attempt_at <= ?"
                " ORDER BY m.next_attempt_at, m.occurred_at LIMIT ?", (now, limit)))
            if rows:
                ids = [str(row[0]) for row in rows]
                await db.execute(
                    f"UPDATE meter_events SET attempts = attempts + 1, next_attempt_at = ? WHERE identifier IN"
                    f" ({_marks(ids)})", (lease_until, *ids))
        return [MeterEventRow(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), int(r[3]), str(r[4]),
                              int(r[5]) + 1, None if r[6] is None else int(r[6])) for r in rows]

    async def record_meter_outcomes(self, outcomes: MeterOutcomes, *, now: int) -> None:
        """Record what Stripe answered for one batch, in one transaction.

        A row voided while its send was in flight has become `cancel_pending`: marking it sent then
        changes nothing, and the cancellation follows.
        """
        async with self.transaction() as db:
            if outcomes.sent:
                await db.execute(
                    f"UPDATE meter_events SET status = 'sent', sent_at = ?, last_error = NULL WHERE status = 'pending'"
                    f" AND identifier IN ({_marks(outcomes.sent)})", (now, *outcomes.sent))
            if outcomes.cancelled:
                await db.execute(
                    f"UPDATE meter_events SET status = 'cancelled', cancelled_at = ?, last_error = NULL"
                    f" WHERE status = 'cancel_pending' AND identifier IN ({_marks(outcomes.cancelled)})",
                    (now, *outcomes.cancelled))
            for identifier, error in outcomes.failed:
                await db.execute("UPDATE meter_events SET status = 'failed', last_error = ? WHERE identifier = ?"
                                 " AND status = 'pending'", (error[:MAX_ERROR_CHARS], identifier))
            for identifier, error in outcomes.uncancellable:
                await db.execute(
                    "UPDATE meter_events SET status = 'sent', last_error = ? WHERE identifier = ?"
                    " AND status = 'cancel_pending'", (("not cancelled: " + error)[:MAX_ERROR_CHARS], identifier))
            for identifier, error, next_at in outcomes.retry:
                await db.execute("UPDATE meter_events SET last_error = ?, next_attempt_at = ? WHERE identifier = ?",
                                 (error[:MAX_ERROR_CHARS], next_at, identifier))

    async def next_meter_event_due(self) -> int | None:
        """When the earliest event to send or cancel is due (unix seconds), or None."""
        rows = await self._read.execute_fetchall(
            "SELECT MIN(next_attempt_at) FROM meter_events WHERE status IN ('pending', 'cancel_pending')")
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    async def meter_event_counts(self) -> dict[str, int]:
        """Meter events by status (every status present, 0 when none)."""
        rows = await self._read.execute_fetchall("SELECT status, COUNT(*) FROM meter_events GROUP BY status")
        counts = dict.fromkeys(METER_STATUSES, 0)
        counts.update({str(status): int(count) for status, count in rows})
        return counts

    # ---- calls that failed inside the tool ---------------------------------------------------

    async def refund_metered_call(self, subscription_id: str, counted_in: Windows, identifier: str, *,
                                  now: int) -> None:
        """A metered call counted but never run: give back its counts and do not bill it, in one transaction."""
        async with self.transaction() as db:
            await db.execute(REFUND_SQL, refund_params(subscription_id, counted_in))
            await void_meter_event(db, identifier, now=now)

    async def void_meter_event(self, identifier: str, *, now: int) -> str | None:
        """The call `identifier` failed inside its tool: do not bill it. Returns its new status, or None.

        Never attempted: `voided`, it is not sent. Attempted (it may have reached Stripe) or sent:
        `cancel_pending`, due now unless a send is in flight (then when its lease ends), and the
        sender cancels it with a meter event adjustment.
        """
        async with self.transaction() as db:
            return await void_meter_event(db, identifier, now=now)

    # ---- overage accounts ------------------------------------------------------------------

    async def overage_account(self, email: str) -> OverageAccount | None:
        """The customer's most recent Stripe subscription (for `overage on|off` and `usage`)."""
        rows = await self._read.execute_fetchall(
            "SELECT s.subscription_id, c.email, c.stripe_customer_id, s.tier, s.status, s.current_period_end,"
            " s.overage_item_id, s.overage_cap_cents FROM subscriptions AS s"
            " JOIN customers AS c ON c.user_id = s.user_id"
            " WHERE c.email = ? AND s.kind = 'stripe' ORDER BY s.created_at DESC, s.subscription_id LIMIT 1", (email,))
        if not rows:
            return None
        r = rows[0]
        return OverageAccount(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), str(r[3]), str(r[4]),
                              None if r[5] is None else int(r[5]), None if r[6] is None else str(r[6]),
                              None if r[7] is None else int(r[7]))

    async def overage_usage(self, subscription_id: str, period_end: int | None) -> OverageUsage:
        """The subscription's overage calls in the billing period ending at `period_end`."""
        rows = await self._read.execute_fetchall(
            "SELECT status, COUNT(*) FROM meter_events WHERE subscription_id = ? AND period_end IS NOT DISTINCT FROM ?"
            " GROUP BY status", (subscription_id, period_end))
        counts = {str(status): int(count) for status, count in rows}
        return OverageUsage(
            billable=sum(counts.get(s, 0) for s in BILLABLE_STATUSES),
            pending=counts.get("pending", 0) + counts.get("cancel_pending", 0),
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            voided=counts.get("voided", 0) + counts.get("cancelled", 0),
        )

    async def day_calls(self, subscription_id: str, day_start: int) -> int:
        """Calls the subscription made in the day window starting at `day_start`."""
        rows = await self._read.execute_fetchall(
            "SELECT day_count FROM usage WHERE subscription_id = ? AND day_start = ?", (subscription_id, day_start))
        return int(rows[0][0]) if rows else 0

    async def meter_events_of(self, subscription_id: str, *, limit: int = 100) -> list[tuple[str, int, str]]:
        """The subscription's latest meter events: (identifier, occurred_at, status), newest first."""
        rows = await self._read.execute_fetchall(
            "SELECT identifier, occurred_at, status FROM meter_events WHERE subscription_id = ?"
            " ORDER BY occurred_at DESC, identifier LIMIT ?", (subscription_id, limit))
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


def _marks(values: Iterable[object] | Sequence[object]) -> str:
    return ", ".join("?" for _ in values)
