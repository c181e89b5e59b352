"""Stripe webhooks: verified events applied to the store exactly once, in any order.

    event.py       the envelope (`StripeEvent`), parsed from a verified body
    registry.py    which handler applies which event type (exact types, one module per family)
    processor.py   dedupe, apply and mark processed in one transaction; record failures; replay
    checkout.py, subscriptions.py, invoices.py, customers.py   the handlers
"""
