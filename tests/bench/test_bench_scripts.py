"""Every benchmark script still imports: the figures the README quotes can be measured again.

(bench_oauth.py once imported a helper that another change removed from bench_core.py; nothing
noticed until the benchmarks were re-run.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

from tests.support import REPO

BENCH = REPO / "bench"


@pytest.fixture
def bench_on_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))  # the scripts import each other as siblings, as `python bench/x.py` runs them
    loaded = set(sys.modules)
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))
        for name in set(sys.modules) - loaded:  # no bench module lingers under a bare name for other tests
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(BENCH)):
                del sys.modules[name]


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCH.glob("*.py")))
def test_every_bench_script_imports(script: str, bench_on_path: None) -> None:
    module = importlib.import_module(script)
    if script.startswith("bench_"):
        assert callable(getattr(module, "main", None)), f"{script} has no main()"
