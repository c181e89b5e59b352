"""The store's customer lookups for checkout, on both backends."""

from __future__ import annotations

from billing.store import AnyStore
from billing.store.customers_sql import KnownCustomer


async def test_an_email_resolves_to_its_customer_preferring_the_one_linked_to_stripe(store: AnyStore) -> None:
    assert await store.customer_for_email("ada@example.com") is None
    async with store.webhook_transaction(100) as tx:
        operator_only = await tx.ensure_stripe_customer(None, email="bob@example.com", name=None,
                                                        event_created=100)
        linked = await tx.ensure_stripe_customer("cus_ada", email="ada@example.com", name=None, event_created=100)
        await tx.ensure_stripe_customer(None, email="ada@example.com", name=None, event_created=101)

    assert await store.customer_for_email("ada@example.com") == KnownCustomer(linked, "cus_ada")
    assert await store.customer_for_email("bob@example.com") == KnownCustomer(operator_only, None)
    assert await store.customer_for_email("ADA@example.com") is None  # callers pass normalized emails
