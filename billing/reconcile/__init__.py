"""Reconciliation with Stripe: find and heal every way the store disagrees with Stripe.

Webhooks are the fast path, not the truth. A run reads Stripe's subscriptions (and the events it
could not deliver), compares them with the store and, with `fix`, heals through the webhooks' own
path, so money and access agree again.

    drift.py      the drift kinds and the comparison of one subscription (pure)
    scan.py       read Stripe a page at a time against the store: the findings (no writes)
    heal.py       apply findings and missed events through the shared transition and the processor
    report.py     what a run found and did (metrics, health, JSON and text)
    runner.py     one run: read everything, then heal
    schedule.py   runs on a schedule in `serve`, one process at a time (a lease in the store)
"""
