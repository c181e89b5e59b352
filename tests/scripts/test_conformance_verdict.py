"""The conformance baseline: a run passes when exactly the documented checks fail, and a stale entry fails it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.conformance_verdict import judge, load_baseline
from tests.support import REPO

BASELINE = REPO / "scripts" / "conformance-baseline.json"
EXPECTED = {"server-stateless": {"needs-fixture": "needs the suite's diagnostic tool"}}


def check(check_id: str, status: str) -> dict[str, object]:
    return {"id": check_id, "status": status, "errorMessage": f"{check_id} said no" if status == "FAILURE" else None}


def test_a_run_whose_failures_are_exactly_the_documented_ones_passes_and_says_why() -> None:
    verdict = judge("server-stateless", [check("real", "SUCCESS"), check("needs-fixture", "FAILURE"),
                                         check("advice", "WARNING")], EXPECTED)
    assert verdict.ok and verdict.lines == ["    expected failure needs-fixture (needs the suite's diagnostic tool)"]


def test_a_failing_check_the_baseline_does_not_name_fails_the_run() -> None:
    verdict = judge("server-stateless", [check("real", "FAILURE"), check("needs-fixture", "FAILURE")], EXPECTED)
    assert not verdict.ok and "    unexpected failure real: real said no" in verdict.lines
    assert not judge("caching", [check("ttl", "FAILURE")], EXPECTED).ok


def test_a_documented_failure_that_now_passes_makes_the_baseline_stale() -> None:
    verdict = judge("server-stateless", [check("needs-fixture", "SUCCESS")], EXPECTED)
    assert not verdict.ok and "stale baseline: needs-fixture now passes" in verdict.lines[0]


def test_a_scenario_that_reported_nothing_fails() -> None:
    assert not judge("caching", [], EXPECTED).ok


def test_the_shipped_baseline_gives_a_reason_for_every_entry_and_excludes_nothing_it_expects() -> None:
    expected, excluded = load_baseline(BASELINE)
    assert expected and excluded and not set(expected) & set(excluded)
    assert all(reason.strip() for checks in expected.values() for reason in checks.values())
    assert all(reason.strip() for reason in excluded.values())
    assert "http-header-validation" not in expected and "caching" not in expected  # these must really pass


def test_the_command_line_judges_a_checks_file_and_lists_the_excluded_scenarios(tmp_path: Path) -> None:
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps([check("caching-hints", "FAILURE")]))
    script = str(REPO / "scripts" / "conformance_verdict.py")
    failed = subprocess.run([sys.executable, script, str(BASELINE), "caching", str(checks)], capture_output=True,
                            text=True, check=False)
    assert failed.returncode == 1 and "unexpected failure caching-hints" in failed.stdout
    excluded = subprocess.run([sys.executable, script, str(BASELINE), "--excluded"], capture_output=True, text=True,
                              check=True)
    assert "tools-call-simple-text" in excluded.stdout.split()
