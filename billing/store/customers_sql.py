"""SQL of the purchase path: which customer (and Stripe customer) an email already belongs to.

`CustomersSQL` is mixed into the store class; its reads run on the store's read connection,
outside any transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.store.connection import SQLMixin


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    """A customer the store knows by email; `stripe_customer_id` is None for operator-only customers."""

    user_id: str
    stripe_customer_id: str | None


class CustomersSQL(SQLMixin):
    """Customer lookups for checkout (mixed into the store class)."""

    async def customer_for_email(self, email: str) -> KnownCustomer | None:
        """The customer with this (normalized) email, preferring one linked to Stripe, else None."""
        rows = list(await self._read.execute_fetchall(
            "SELECT user_id, stripe_customer_id FROM customers WHERE email = ?"
            " ORDER BY stripe_customer_id IS NULL, updated_at DESC, user_id LIMIT 1",
            (email,)))
        if not rows:
            return None
        user_id, stripe_customer_id = rows[0]
        return KnownCustomer(str(user_id), str(stripe_customer_id) if stripe_customer_id else None)
