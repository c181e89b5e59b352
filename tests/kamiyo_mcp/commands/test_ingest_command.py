"""`kamiyo-mcp ingest` as an operator runs it: loads a file, and a failing intel store ends it with one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kamiyo_mcp.settings import load_settings
from tests.support import DATA, base_env, cli

ADDRESSES = DATA / "exploits" / "addresses.jsonl"
EXPLOITS = DATA / "exploits" / "exploits.jsonl"


def test_ingest_loads_the_intel_file_beside_the_billing_file(tmp_path: Path) -> None:
    env = base_env(tmp_path / "kamiyo.db")
    done = cli(["ingest", str(EXPLOITS)], env, timeout=120)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "kamiyo.intel.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM intel_incidents").fetchone()[0] > 0
    with sqlite3.connect(tmp_path / "kamiyo.db") as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'intel%'").fetchall() == []


def test_a_damaged_intel_store_ends_ingest_with_one_line_and_exit_1(tmp_path: Path) -> None:
    env = base_env(tmp_path / "kamiyo.db")
    first = cli(["ingest", str(ADDRESSES)], env, timeout=120)  # creates the tables; links only, no incident
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(load_settings(env).intel_path) as conn:
        conn.execute("DROP TABLE intel_incident_chains")
    done = cli(["ingest", str(EXPLOITS)], env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "kamiyo-mcp: the incident store failed: OperationalError: no such table: intel_incident_chains"]
    assert "Traceback" not in done.stderr
