"""Benchmark of the intel data layer: ingestion time of the shared set and search latency.

Usage: python bench/bench_intel.py [--shared DIR] [--searches N]
DIR is the incident data directory (default: the repository's tests/data/exploits).
Prints plain text; goals: search p50 < 5 ms, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kamiyo_mcp.intel.ingest import ingest_sources
from kamiyo_mcp.intel.queries import TIER_CAPS, assess_protocol_risk, search_exploits
from kamiyo_mcp.intel.store import IntelStore

REPO = Path(__file__).resolve().parents[1]
QUERIES = [
    "",
    "euler",
    "ronin",
    "reentrancy",
    "price manipulation",
    "flash loan",
    "private key",
    "oracle",
    "access control",
    "bridge",
    "rugpull",
    "infrastructure",
    "protocol logic",
    "curve",
    "uniswap",
    "signature",
    "phishing",
    "logic flaw",
    "bsc",
    "arbitrum",
    "mango",
    "nomad",
    "wormhole",
    "x",
    "'; DROP TABLE --",
    "compromised multisig",
    "reward calculation",
    "unverified",
]
CHAINS = [None, None, None, "Ethereum", "bsc", "arbitrum", "base", "solana", "polygon"]
SINCES = [None, None, "2022-01-01", "2024-06-01", "2025-01-01T00:00:00Z"]


def _default_shared() -> Path:
    return REPO / "tests" / "data" / "exploits"


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(shared: Path, searches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await IntelStore.open(Path(tmp) / "bench.db")
        try:
            start = time.perf_counter()
            report = await ingest_sources(store, [str(shared)])
            jsonl_s = time.perf_counter() - start
            start = time.perf_counter()
            raw = await ingest_sources(store, [str(shared / "raw")])
            raw_s = time.perf_counter() - start
            fresh = await IntelStore.open(Path(tmp) / "raw-only.db")
            try:
                start = time.perf_counter()
                raw_only = await ingest_sources(fresh, [str(shared / "raw")])
                raw_only_s = time.perf_counter() - start
            finally:
                await fresh.close()
            print(
                f"ingest {shared} (exploits.jsonl + addresses.jsonl) into an empty db: {jsonl_s * 1000:.0f} ms, "
                f"{report.added} reports, {report.incident_groups} distinct incidents, {len(report.errors)} errors"
            )
            print(
                f"ingest raw tree (DeFiLlama, BlockSec, 6 DeFiHackLabs READMEs) into an empty db: "
                f"{raw_only_s * 1000:.0f} ms, {raw_only.added} reports, {raw_only.incident_groups} distinct incidents"
            )
            print(
                f"re-ingest raw tree over the normalized set: {raw_s * 1000:.0f} ms, "
                f"{raw.added} added, {raw.updated} updated, {raw.skipped} skipped"
            )

            rng = random.Random(7)
            caps = list(TIER_CAPS.values())
            samples: list[float] = []
            for _ in range(searches):
                kwargs = {
                    "query": rng.choice(QUERIES),
                    "chain": rng.choice(CHAINS),
                    "since": rng.choice(SINCES),
                    "limit": rng.choice([None, 10, 50, 200]),
                    "tier_cap": rng.choice(caps),
                }
                t0 = time.perf_counter()
                await search_exploits(store, **kwargs)
                samples.append((time.perf_counter() - t0) * 1000)
            print(
                f"search x{len(samples)} (in-process, mixed queries/filters/limits): "
                f"p50 {_percentile(samples, 50):.2f} ms, p95 {_percentile(samples, 95):.2f} ms, "
                f"p99 {_percentile(samples, 99):.2f} ms, max {max(samples):.2f} ms, "
                f"mean {statistics.fmean(samples):.2f} ms (goal: p50 < 5 ms, p99 < 20 ms)"
            )

            risk: list[float] = []
            for name in ["Euler", "Ronin", "Curve Finance", "Mango Markets", "unknownprotocol"] * 10:
                t0 = time.perf_counter()
                await assess_protocol_risk(store, protocol=name, chain=None, time_window_days=90, detail="full")
                risk.append((time.perf_counter() - t0) * 1000)
            print(
                f"assess_protocol_risk(detail=full) x{len(risk)}: p50 {_percentile(risk, 50):.2f} ms, "
                f"p99 {_percentile(risk, 99):.2f} ms"
            )
        finally:
            await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=_default_shared(), help="shared exploits directory")
    parser.add_argument("--searches", type=int, default=500)
    args = parser.parse_args(argv)
    if not (args.shared / "exploits.jsonl").is_file():
        print(f"no exploits.jsonl in {args.shared}", file=sys.stderr)
        return 2
    asyncio.run(run(args.shared, args.searches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
