"""`mypy --strict` passes on billing/ and kamiyo_mcp/ (configuration in pyproject.toml), so every landing keeps it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.components import missing
from tests.support import REPO


def test_billing_and_kamiyo_mcp_type_check_under_mypy_strict() -> None:
    if importlib.util.find_spec("mypy") is None or importlib.util.find_spec("asyncpg-stubs") is None:
        missing("mypy (with asyncpg-stubs)", "pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
