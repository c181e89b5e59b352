"""Pytest fixtures for the fake Stripe; import them into a conftest to use them by name.

# tests/conftest.py
from tests.fakes.fixtures import fake_stripe, fake_stripe_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.fakes.stripe_fake import FakeStripe, FakeStripeServer, run_fake_stripe


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """A fresh fake Stripe server for one test."""
    with run_fake_stripe() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    """One fake Stripe server for the whole session; reset it per test with ``fake.reset()``."""
    server = FakeStripeServer()
    yield server.start()
    server.stop()


# The metered overage price and its Billing Meter, as the overage tests configure them.
OVERAGE_PRICE = "price_overage_calls"
METER_EVENT_NAME = "kamiyo_mcp_calls"


@contextmanager
def run_metered_fake_stripe() -> Iterator[FakeStripe]:
    """A fresh fake Stripe with an active Billing Meter and the metered overage price on it."""
    with run_fake_stripe() as fake:
        fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
        yield fake
