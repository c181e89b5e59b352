"""The layering the architecture promises, checked on the source: drivers and SQL stay in the stores."""

from __future__ import annotations

import re

from tests.support import REPO

DRIVER_IMPORT = re.compile(r"^\s*(?:import|from)\s+(sqlite3|aiosqlite|asyncpg)\b", re.M)
STORE_MODULES = ("billing/store/", "kamiyo_mcp/intel/store")


def test_only_store_modules_import_a_database_driver() -> None:
    offenders = {}
    for package in ("billing", "kamiyo_mcp"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            found = DRIVER_IMPORT.findall(path.read_text(encoding="utf-8"))
            if found and not relative.startswith(STORE_MODULES):
                offenders[relative] = found
    assert offenders == {}


def test_the_billing_authority_never_imports_the_mcp_server() -> None:
    offenders = [path.relative_to(REPO).as_posix() for path in sorted((REPO / "billing").rglob("*.py"))
                 if re.search(r"^\s*(?:import|from)\s+kamiyo_mcp\b", path.read_text(encoding="utf-8"), re.M)]
    assert offenders == []
