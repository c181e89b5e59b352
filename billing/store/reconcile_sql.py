"""SQL of reconciliation: the stored side of each Stripe subscription, read a page at a time.

`ReconcileSQL` is mixed into the store class; its reads run outside any transaction (the writes of
a reconciliation go through `webhook_transaction`, like an event's).
"""

from __future__ import annotations

from collections.abc import Sequence

from billing.store.connection import Row, SQLMixin
from billing.store.records import StoredSubscription
from billing.subscription_state import SubscriptionRow

_STORED_SQL = (
    "SELECT s.subscription_id, s.user_id, s.tier, s.status, s.current_period_end, s.cancel_at_period_end,"
    " s.payment_state, s.last_event_created, s.payment_event_created, c.email, c.stripe_customer_id, s.created_at,"
    " CASE WHEN EXISTS (SELECT 1 FROM claims AS m WHERE m.subscription_id = s.subscription_id"
    " AND m.kind = 'email_code') OR EXISTS (SELECT 1 FROM tokens AS t WHERE t.subscription_id = s.subscription_id)"
    " THEN 1 ELSE 0 END"
    " FROM subscriptions AS s JOIN customers AS c ON c.user_id = s.user_id WHERE s.kind = 'stripe'"
)
PAGE_SIZE = 500


class ReconcileSQL(SQLMixin):
    """Reads of the stored Stripe subscriptions (mixed into the store class)."""

    async def stored_subscriptions(self, subscription_ids: Sequence[str]) -> dict[str, StoredSubscription]:
        """The stored Stripe subscriptions among `subscription_ids` (one statement), by id."""
        if not subscription_ids:
            return {}
        marks = ", ".join("?" for _ in subscription_ids)
        rows = await self._read.execute_fetchall(
            f"{_STORED_SQL} AND s.subscription_id IN ({marks})", tuple(subscription_ids))
        return {stored.row.subscription_id: stored for stored in map(_stored, rows)}

    async def stored_subscription_page(self, *, after: str | None, created_gte: int | None = None,
                                       limit: int = PAGE_SIZE) -> list[StoredSubscription]:
        """The next `limit` stored Stripe subscriptions by id after `after` (keyset paging: flat memory)."""
        clauses: list[str] = []
        params: list[object] = []
        if after is not None:
            clauses.append(" AND s.subscription_id > ?")
            params.append(after)
        if created_gte is not None:
            clauses.append(" AND s.created_at >= ?")
            params.append(created_gte)
        rows = await self._read.execute_fetchall(
            f"{_STORED_SQL}{''.join(clauses)} ORDER BY s.subscription_id LIMIT ?", (*params, limit))
        return [_stored(row) for row in rows]


def _stored(row: Row) -> StoredSubscription:
    values = list(row)
    subscription = SubscriptionRow(
        subscription_id=str(values[0]), user_id=str(values[1]), tier=str(values[2]), status=str(values[3]),
        current_period_end=_int(values[4]), cancel_at_period_end=bool(values[5]),
        payment_state=None if values[6] is None else str(values[6]), last_event_created=_int(values[7]),
        payment_event_created=_int(values[8]))
    return StoredSubscription(subscription, str(values[9]), None if values[10] is None else str(values[10]),
                              int(str(values[11])), bool(values[12]))


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
