"""Programs a test needs from the machine (a browser, a PostgreSQL server) and what to do without one.

Locally a missing component skips the test with the exact command that installs it. Under `CI=true`
no test may skip: `.ci/run` installs everything, so a skip there would hide a broken step. The two
hooks below (registered by tests/conftest.py, or with `-p tests.components`) turn every skip, from
`missing` or from anywhere else, into a failure that keeps the skip's reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import NoReturn

import pytest

CI_SKIP = "a test may not skip under CI=true (.ci/run installs everything it needs)"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, install: str) -> NoReturn:
    """Skip a test because `what` is not installed, naming the command that installs it."""
    pytest.skip(f"{what} is not installed; install it with: {install}")


def _fail_skip_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = f"{CI_SKIP}: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())
