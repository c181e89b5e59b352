"""The fake Stripe (tests/fakes) in a process of its own, for benchmarks: its work is not the measured one's.

    python bench/fake_stripe.py [CUSTOMER_ID ...]     # prints the base URL, serves until stdin closes

It has the metered overage price on an active Billing Meter, and the given customers.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE  # noqa: E402
from tests.fakes.stripe_fake import FakeStripeServer  # noqa: E402


def main() -> None:
    server = FakeStripeServer()
    fake = server.start()
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
    for customer in sys.argv[1:]:
        fake.add_customer(id=customer, email=f"{customer}@example.com")
    print(fake.base_url, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
