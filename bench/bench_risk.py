"""assess_defi_protocol_risk latency at 1x and 10x the incident data, indexed vs. recomputed per call.

    python bench/bench_risk.py [--calls 600] [--scales 1,10]

The 10x data set is the repository's exploits.jsonl copied ten times, each copy's protocols
renamed ("k2 Euler", ...), so both incidents and protocols grow tenfold. For each scale it prints
p50/p99 of the tool function at each detail level (basic = personal, summary = team, full =
enterprise) over a mix of real names, other spellings, prefixes and unknown names, at the default
90-day window, then with a window that changes on every call (peer scores not yet kept for it),
and, side by side, the pre-index algorithm as it was before (every name compared with the query,
every protocol rescored for the peer percentile, on every call). Goal: p50 < 2 ms at any detail,
flat from 1x to 10x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kamiyo_mcp.intel.ingest import ingest_sources  # noqa: E402
from kamiyo_mcp.intel.names import match_names, name_key, suggest_names  # noqa: E402
from kamiyo_mcp.intel.protocol_index import GroupSummary  # noqa: E402
from kamiyo_mcp.intel.queries import assess_protocol_risk  # noqa: E402
from kamiyo_mcp.intel.risk import ScoredIncident, percentile, score_incidents  # noqa: E402
from kamiyo_mcp.intel.store import IntelStore  # noqa: E402

DATA = ROOT / "tests" / "data" / "exploits"
NOW = datetime(2026, 6, 15, tzinfo=UTC)
SPELLINGS = ["Euler", "euler finance", "Curve", "Curve DEX", "Ronin", "ronin bridge", "Mango Markets", "Nomad",
             "Poly Network", "Bybit", "Wormhole", "Balancer", "yearn", "Cream", "Uniswap", "Eulr Financ",
             "Curv", "unknownprotocol", "Compound", "Beanstalk"]


def scaled_copy(scale: int, target: Path) -> Path:
    """exploits.jsonl repeated ``scale`` times, copies k >= 2 renamed so they are other protocols."""
    rows = [json.loads(line) for line in (DATA / "exploits.jsonl").read_text().splitlines()]
    with target.open("w") as out:
        for k in range(1, scale + 1):
            for row in rows:
                if k > 1:
                    row = {**row, "id": f"{row['id']}:k{k}", "protocol": f"k{k} {row['protocol']}",
                           "related_ids": [f"{r}:k{k}" for r in row["related_ids"]]}
                out.write(json.dumps(row) + "\n")
    return target


def before(groups: list[GroupSummary], protocol: str, window: int) -> dict[str, object]:
    """The enterprise-detail work of the tool before the index, per call (its costly steps)."""
    today = NOW.date()

    def score(gs: list[GroupSummary]) -> int:
        return score_incidents([ScoredIncident(date.fromisoformat(g.date), g.amount_usd) for g in gs],
                               today=today, window_days=window).score

    names = {n for g in groups for n in g.member_names}
    matched = set(match_names(protocol, names))
    mine = sorted((g for g in groups if matched.intersection(g.member_names)), key=lambda g: g.date, reverse=True)
    by_protocol: dict[str, list[GroupSummary]] = {}
    for g in groups:
        by_protocol.setdefault(name_key(g.protocol), []).append(g)
    peers = [score(members) for members in by_protocol.values()]
    mine_score = score(mine)
    return {"score": mine_score, "percentile": percentile(mine_score, peers),
            "suggestions": suggest_names(protocol, names) if not matched else []}


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> tuple[float, float]:
    samples = []
    for call in calls:
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return pct(samples, 50), pct(samples, 99)


async def run_scale(scale: int, calls: int, tmp: Path) -> None:
    store = await IntelStore.open(tmp / f"risk-{scale}x.db")
    try:
        source = DATA / "exploits.jsonl" if scale == 1 else scaled_copy(scale, tmp / f"exploits-{scale}x.jsonl")
        start = time.perf_counter()
        report = await ingest_sources(store, [str(source)])
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        await store.protocol_index()
        index_ms = (time.perf_counter() - start) * 1000
        groups = await store.group_summaries()
        rng = random.Random(scale)
        data_names = sorted({n for g in groups for n in g.member_names if not n.startswith("k")})
        names = [rng.choice(SPELLINGS + data_names) for _ in range(calls)]
        print(f"{scale}x: {report.incidents_total} reports, {report.incident_groups} incidents "
              f"(ingest {load_s:.1f} s, protocol index {index_ms:.0f} ms)")
        for detail in ("basic", "summary", "full"):
            p50, p99 = await timed([
                lambda n=n, d=detail: assess_protocol_risk(store, protocol=n, chain=None, time_window_days=90,
                                                           detail=d, now=NOW)  # type: ignore[misc]
                for n in names
            ])
            print(f"  indexed, detail={detail:<7} window 90 d:        p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
        windows = list(range(91, 91 + calls // 4))
        p50, p99 = await timed([
            lambda n=n, w=w: assess_protocol_risk(store, protocol=n, chain=None, time_window_days=w, detail="full",
                                                  now=NOW)  # type: ignore[misc]
            for n, w in zip(names, windows, strict=False)
        ])
        print(f"  indexed, detail=full    a new window per call:  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms"
              "  (peer scores computed once per window and day)")

        async def old(name: str) -> None:
            before(groups, name, 90)

        p50, p99 = await timed([lambda n=n: old(n) for n in names[: max(20, calls // 10)]])  # type: ignore[misc]
        print(f"  before the index (per-call recomputation), full: p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")
    finally:
        await store.close()


async def run(calls: int, scales: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for scale in scales:
            await run_scale(scale, calls, Path(tmp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--scales", default="1,10")
    args = parser.parse_args(argv)
    asyncio.run(run(args.calls, [int(s) for s in args.scales.split(",")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
