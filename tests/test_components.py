"""A component missing from the machine skips its tests locally, with the install command, and fails them in CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.components import in_ci
from tests.support import REPO

BROWSER_TEST = "tests/billing/http/test_pages_browser.py::test_the_emailed_link_page_redeems_only_on_the_click"


def run_browser_test_without_chromium(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": str(empty), "PLAYWRIGHT_BROWSERS_PATH": str(empty), "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-n", "0", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / ci), BROWSER_TEST],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_without_any_chromium_the_browser_tests_skip_with_the_install_command(tmp_path: Path) -> None:
    result = run_browser_test_without_chromium(tmp_path, ci="false")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "playwright install --with-deps chromium" in result.stdout and "apt-get install chromium" in result.stdout


def test_under_ci_a_missing_chromium_fails_the_run(tmp_path: Path) -> None:
    result = run_browser_test_without_chromium(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert not re.search(r"\d+ skipped", result.stdout) and re.search(r"1 (failed|error)", result.stdout)
    assert "may not skip under CI=true" in result.stdout and "apt-get install chromium" in result.stdout


@pytest.mark.parametrize(("ci", "expected"), [("true", "1 failed"), ("false", "1 skipped")])
def test_any_skip_fails_under_ci_with_its_reason(tmp_path: Path, ci: str, expected: str) -> None:
    test_file = tmp_path / "test_widget.py"
    test_file.write_text("import pytest\n\n\ndef test_needs_a_widget():\n    pytest.skip('no widget here')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-n", "0", "-p", "no:cacheprovider",
                             "-p", "tests.components", str(test_file)], env={**os.environ, "CI": ci}, cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert expected in result.stdout and "no widget here" in result.stdout, result.stdout


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("", False),
                                                 ("0", False)])
def test_only_a_true_ci_variable_counts_as_ci(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected
