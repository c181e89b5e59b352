"""Fixtures of the billing HTTP tests: a fresh fake Stripe and an environment pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.http.app_harness import environment
from tests.fakes.stripe_fake import FakeStripe, run_fake_stripe


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_fake_stripe() as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    return environment(tmp_path, fake)
