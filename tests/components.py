"""Programs a test needs from the machine (a browser, a PostgreSQL server) and what to do without one.

Locally a missing component skips the test with the exact command that installs it; under `CI=true`
the same absence fails the test, since `.ci/run` installs everything and a skip there would hide a
broken step.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, install: str) -> NoReturn:
    """Skip (locally) or fail (under CI=true) a test because `what` is not installed."""
    message = f"{what} is not installed; install it with: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: .ci/run must install it)", pytrace=False)
    pytest.skip(message)
