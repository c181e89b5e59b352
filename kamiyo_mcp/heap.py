"""The collector's settings for a long-running server, applied once start-up is done.

Python's cyclic garbage collector walks every tracked object of the generations it collects, and a
full collection walks them all. A server's heap after start-up is mostly objects that live as long
as the process (modules, classes, functions, the Stripe library's types, the tier table: ~100,000
of them), and a request makes and drops thousands of short-lived ones. So, once the server is up:

- `gc.freeze()` moves everything alive out of the collector's reach (reference counting still
  frees any of it that becomes garbage), so a collection walks only what the server made since;
- the youngest generation is collected every `YOUNG_THRESHOLD` allocations instead of 700, so fewer
  collections run and fewer of a request's objects, caught mid-request, are promoted to the older
  generations that full collections walk.

Measured with `bench/bench_core.py` (raw client, 2025-11-25 sessions, `get_account_status`, 8
connections): collector time per call 270 -> ~110 us. The bare server of the benchmark applies
the same settings, so the comparison measures authorization, not the collector.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7_000  # allocations between two collections of the youngest generation (Python's: 700)


def settle() -> None:
    """Collect start-up garbage, freeze what survives, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
