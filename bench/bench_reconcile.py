"""Reconciliation figures (printed, never asserted): `kamiyo-mcp reconcile --fix` as an operator runs it
(a real process) against the fake Stripe (another process, serving N subscriptions over HTTP and
checking every request against Stripe's spec), for several N side by side:

1. a store that lacks every subscription: all N found and healed (customer, subscription, claim and
   welcome mail each) -- the worst case;
2. the next run, with nothing drifted: the cost of one scheduled run when all is well.

For each: wall time of the run (the report's own duration, start-up excluded; it includes waiting
for the fake and for the 20 requests/s pacing), the whole process's wall and CPU time, Stripe calls,
and the peak RSS of the reconcile process. Goal: Stripe calls O(n / 100) (one per page), memory flat in
n when nothing drifted (pages are streamed, never loaded whole).

    python bench/bench_reconcile.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "sk_test_bench_reconcile_0123"
PRICES = {"personal": "price_1PgafmB7WZ01zgkW6dKueIc5", "team": "price_1PgafmB7WZ01zgkW02Hf9z6c"}


# ---- the fake Stripe (a subprocess: `--serve-fake N`) ----------------------------------------------

def serve_fake(count: int) -> None:
    """Serve a fake Stripe holding `count` subscriptions (half per price); print the URL; stop on stdin EOF."""
    from tests.fakes.stripe_fake import FakeStripe, FakeStripeServer

    fake = FakeStripe()
    state = fake.state
    state.subscriptions.clear()
    now = int(time.time()) - 3600
    prices = list(PRICES.values())
    for n in range(count):
        customer = state.add_customer(email=f"bench{n}@example.com")
        state.add_subscription(customer["id"], [{"price": prices[n % 2]}], created=now + n // 100)
    server = FakeStripeServer(fake)
    server.start()
    print(fake.base_url, flush=True)
    sys.stdin.read()
    server.stop()


# ---- the runs -----------------------------------------------------------------------------------

def reconcile(db: Path, url: str) -> tuple[dict[str, Any], float, float, int]:
    """One `kamiyo-mcp reconcile --fix --json`: its report, wall and CPU seconds, and peak RSS in MiB."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": "bench-secret-" + "x" * 40,
           "KAMIYO_INTEL_SOURCES": "", "KAMIYO_LOG_LEVEL": "WARNING", "STRIPE_SECRET_KEY": KEY,
           "STRIPE_API_BASE": url, "STRIPE_PRICE_MCP_PERSONAL": PRICES["personal"],
           "STRIPE_PRICE_MCP_TEAM": PRICES["team"]}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", _RUN_CLI, "reconcile", "--fix", "--json"], env=env,
                                   cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        errors = err.read().decode()
        if code not in (0, 3):
            raise SystemExit(f"reconcile failed ({code}): {errors[-2000:]}")
        peak_kib = int(errors.rsplit("VmHWM:", 1)[1].split()[0])
        summary = _summary(out)
        return summary, wall, usage.ru_utime + usage.ru_stime, peak_kib // 1024


# The CLI, then this process's own peak RSS: /proc's VmHWM counts this program's memory only (the
# rusage maximum would also count what the parent held when it forked the child).
_RUN_CLI = (
    "import sys\nfrom kamiyo_mcp.cli import main\ncode = main(sys.argv[1:])\n"
    "sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')))\nsys.exit(code)"
)


def _summary(out: Any) -> dict[str, Any]:
    """The report's counts, without keeping its subscriptions (the next child is forked from this process)."""
    report = json.load(out)
    return {key: report[key] for key in ("drift", "healed", "stripe_calls", "duration_seconds")}


def measure(count: int) -> list[tuple[str, dict[str, Any], float, float, int]]:
    fake = subprocess.Popen([sys.executable, __file__, "--serve-fake", str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert fake.stdout is not None and fake.stdin is not None
    url = fake.stdout.readline().strip()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "kamiyo.db"
            for label in ("all missing, healed", "nothing drifted"):
                report, wall, cpu, rss = reconcile(db, url)
                rows.append((label, report, wall, cpu, rss))
    finally:
        fake.stdin.close()
        fake.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="subscription counts, comma-separated")
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake is not None:
        serve_fake(args.serve_fake)
        return
    print(f"{'subscriptions':>13}  {'run':<20} {'drift':>6} {'healed':>6} {'Stripe calls':>12} "
          f"{'run s':>7} {'process s':>9} {'CPU s':>6} {'peak RSS MiB':>12}")
    for count in (int(s) for s in args.sizes.split(",")):
        # Each size has its own RSS baseline: a process's peak is only comparable with its siblings'.
        for label, report, wall, cpu, rss in measure(count):
            print(f"{count:>13}  {label:<20} {report['drift']:>6} {report['healed']:>6} "
                  f"{report['stripe_calls']:>12} {report['duration_seconds']:>7.2f} {wall:>9.2f} {cpu:>6.2f} {rss:>12}")


if __name__ == "__main__":
    main()
