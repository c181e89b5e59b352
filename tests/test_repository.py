"""The repository stands alone: CI runs the README's own commands on nothing but the repository."""

from __future__ import annotations

import hashlib
import re
import subprocess

from tests.support import REPO


def readme_first_screen_commands() -> list[str]:
    """The shell commands in the README before its first section heading."""
    first_screen = (REPO / "README.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", first_screen, flags=re.S)]


def test_the_readme_opens_with_two_commands_one_to_serve_and_one_to_test() -> None:
    serve, test = readme_first_screen_commands()
    assert serve.endswith("kamiyo-mcp serve") and "pip install -e ." in serve
    assert test.endswith(".venv/bin/pytest") and "pip install -e '.[test]'" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = readme_first_screen_commands()
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in ci_lines


def test_nothing_tracked_reaches_outside_the_repository_for_test_material() -> None:
    tracked = subprocess.run(["git", "ls-files", "--", ".ci", "scripts", "tests", "bench", "pyproject.toml",
                              "README.md"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    this_file = "tests/test_repository.py"  # it names the patterns
    offenders = [path for path in tracked if not path.startswith("tests/data/") and path != this_file
                 and re.search(r"\.\./shared|KAMIYO_SHARED_DIR|/work/shared",
                               (REPO / path).read_text(encoding="utf-8", errors="replace"))]
    assert offenders == []


def test_the_test_material_is_data_with_its_provenance_licences_and_checksums() -> None:
    data = REPO / "tests" / "data"
    tracked = subprocess.run(["git", "ls-files", "--", "tests/data"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert [p for p in tracked if not re.search(r"\.(json|jsonl|md)$|/LICENSE$", p)] == []  # data, not code
    exploits = (data / "exploits" / "README.md").read_text(encoding="utf-8")
    stripe = (data / "stripe" / "README.md").read_text(encoding="utf-8")
    assert "## Provenance" in exploits and "## Provenance" in stripe
    assert "Apache License" in (data / "exploits" / "raw" / "defihacklabs" / "LICENSE").read_text(encoding="utf-8")
    assert "github.com/stripe/openapi** (MIT)" in stripe and (data / "stripe" / "events" / "CHANGES.json").is_file()
    # The raw sources are the upstream bytes the README's checksums name.
    listed = dict((path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (raw/\S+)$", exploits, flags=re.M))
    raw = {p.removeprefix("tests/data/exploits/") for p in tracked if p.startswith("tests/data/exploits/raw/")
           and not p.endswith("LICENSE")}
    assert set(listed) == raw
    for path, digest in listed.items():
        assert hashlib.sha256((data / "exploits" / path).read_bytes()).hexdigest() == digest, path
