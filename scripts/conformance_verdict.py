"""Judge one MCP conformance scenario against the documented baseline of expected failures.

    python3 scripts/conformance_verdict.py BASELINE.json SCENARIO CHECKS.json    # exit 0: as expected
    python3 scripts/conformance_verdict.py BASELINE.json --excluded              # the scenarios not run

The baseline (scripts/conformance-baseline.json) names, per scenario, the checks expected to fail
and why (each needs a fixture tool or capability of the suite's "everything" server that a product
server does not have), plus the scenarios excluded because they pass for the wrong reason. A run is
as expected when exactly the listed checks fail: any other failing check is a regression, and a
listed check that passes makes the baseline stale (remove it). Warnings never fail a run, as in the
suite itself. Standard library only: CI runs it with the machine's python3.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def load_baseline(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(scenario → {check id → why it fails}, excluded scenario → why it is not run)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("expected_failures", {}), data.get("excluded", {})


def judge(scenario: str, checks: list[dict[str, object]], expected: dict[str, dict[str, str]]) -> Verdict:
    """Compare the checks of one scenario run with the checks the baseline expects to fail."""
    if not checks:
        return Verdict(False, [f"{scenario}: the suite reported no checks"])
    failing = {str(c.get("id")): str(c.get("errorMessage") or "") for c in checks if c.get("status") == "FAILURE"}
    listed = expected.get(scenario, {})
    lines = [f"    unexpected failure {check}: {message}" for check, message in sorted(failing.items())
             if check not in listed]
    lines += [f"    stale baseline: {check} now passes; remove it from the baseline" for check in sorted(listed)
              if check not in failing]
    lines += [f"    expected failure {check} ({listed[check]})" for check in sorted(listed) if check in failing]
    ok = all(check in listed for check in failing) and all(check in failing for check in listed)
    return Verdict(ok, lines)


def main(argv: list[str]) -> int:
    baseline = Path(argv[1])
    expected, excluded = load_baseline(baseline)
    if argv[2:] == ["--excluded"]:
        print(" ".join(sorted(excluded)))
        return 0
    scenario, checks_file = argv[2], Path(argv[3])
    checks = json.loads(checks_file.read_text(encoding="utf-8")) if checks_file.is_file() else []
    verdict = judge(scenario, checks, expected)
    for line in verdict.lines:
        print(line)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
