"""The collector settings a long-running server applies once it is up."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
import kamiyo_mcp.app
from kamiyo_mcp import heap
assert gc.get_freeze_count() == 0
heap.settle()
print(gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_settling_the_heap_freezes_what_start_up_left_and_collects_the_young_generation_less_often() -> None:
    # In a child process: a frozen heap would outlive this test in the test process.
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    frozen, young = map(int, out.stdout.split())
    assert frozen > 50_000  # the server's modules, classes, functions: everything start-up made
    assert young == 7_000
