"""Benchmark of the intel tools: ingestion, in-process search latency, and answer bytes per tier.

Usage: python bench/bench_intel.py [--shared DIR] [--searches N] [--root DIR]

- ingestion of the shared set (normalized jsonl, raw sources) into an empty store;
- search latency in-process over a mix of word queries, sentences people type, chains, dates and
  page sizes (the same workload for any version of the code: only query/chain/since/limit/tier_cap);
- the bytes of whole tool results (text content + structured content, as the MCP client receives
  them) at each tier, through `kamiyo-mcp serve` and the official client.

--root runs everything against another checkout (e.g. a `git worktree` of an older commit), so
"before" and "after" come from this one script. Goals: search p50 < 5 ms in-process; every answer
under 100 KB at every tier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUERIES = [
    "", "euler", "ronin", "reentrancy", "price manipulation", "flash loan", "private key", "oracle",
    "access control", "bridge", "rugpull", "infrastructure", "protocol logic", "curve", "uniswap", "signature",
    "phishing", "logic flaw", "bsc", "arbitrum", "mango", "nomad", "wormhole", "x", "'; DROP TABLE --",
    "compromised multisig", "reward calculation", "unverified",
    "flash loan attacks on BSC in 2023", "bridge hacks over $100M", "largest hacks ever",
    "private key compromises in 2024", "reentrancy on Ethereum before 2020", "exploits in March 2022",
    "flsh loan on bsc", "latest phishing attacks",
]
CHAINS = [None, None, None, "Ethereum", "bsc", "arbitrum", "base", "solana", "polygon"]
SINCES = [None, None, "2022-01-01", "2024-06-01", "2025-01-01T00:00:00Z"]
TIER_CAPS = {"personal": 50, "team": 200, "enterprise": 1000}
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("largest search page", "search_crypto_exploits", {"query": "", "limit": 100_000}),
    ("typical search", "search_crypto_exploits", {"query": "flash loan"}),
    ("risk (Curve)", "assess_defi_protocol_risk", {"protocol": "Curve"}),
    ("details (BtcTurk, 159 txs)", "get_exploit_details", {"exploit_id": "defillama:2025-08-14:btcturk"}),
    ("details (Euler)", "get_exploit_details", {"exploit_id": "defillama:2023-03-13:euler-v1"}),
    ("wallet (c0ffeebabe.eth)", "monitor_wallet", {"address": "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"}),
]


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def in_process(shared: Path, searches: int, tmp: Path) -> None:
    from kamiyo_mcp.intel.ingest import ingest_sources
    from kamiyo_mcp.intel.queries import search_exploits
    from kamiyo_mcp.intel.store import IntelStore

    store = await IntelStore.open(tmp / "bench.db")
    try:
        start = time.perf_counter()
        report = await ingest_sources(store, [str(shared)])
        jsonl_s = time.perf_counter() - start
        start = time.perf_counter()
        raw = await ingest_sources(store, [str(shared / "raw")])
        raw_s = time.perf_counter() - start
        print(f"ingest exploits.jsonl + addresses.jsonl into an empty db: {jsonl_s * 1000:.0f} ms, "
              f"{report.added} reports, {report.incident_groups} distinct incidents")
        print(f"re-ingest the raw tree over it: {raw_s * 1000:.0f} ms, {raw.added} added, {raw.updated} updated")
        rng = random.Random(7)
        samples: list[float] = []
        for _ in range(searches):
            kwargs = {"query": rng.choice(QUERIES), "chain": rng.choice(CHAINS), "since": rng.choice(SINCES),
                      "limit": rng.choice([None, 10, 50, 200]), "tier_cap": rng.choice(list(TIER_CAPS.values()))}
            t0 = time.perf_counter()
            try:
                await search_exploits(store, **kwargs)
            except Exception as exc:  # an argument the code refuses is still a measured answer
                if type(exc).__name__ != "IntelInputError":
                    raise
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"search x{len(samples)} in-process (words, sentences, chains, dates, page sizes): "
              f"p50 {_percentile(samples, 50):.2f} ms, p95 {_percentile(samples, 95):.2f} ms, "
              f"p99 {_percentile(samples, 99):.2f} ms, mean {statistics.fmean(samples):.2f} ms (goal: p50 < 5 ms)")
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def answer_bytes(root: Path, shared: Path, tmp: Path) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(root),
           "KAMIYO_DATABASE_URL": str(tmp / "serve.db"), "MCP_JWT_SECRET": "bench-" + "s" * 40,
           "KAMIYO_INTEL_SOURCES": "", "KAMIYO_PUBLIC_URL": url, "KAMIYO_LOG_LEVEL": "WARNING"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "kamiyo_mcp", *args], env=env, cwd=root, capture_output=True,
                              text=True, timeout=300, check=True)
        return done.stdout.strip()

    cli("ingest", str(shared))
    tokens = {tier: cli("token", "issue", "--email", f"{tier}@bench.example", "--tier", tier) for tier in TIER_CAPS}
    server = subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port)], env=env, cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start") from None
                time.sleep(0.05)
        print("answer bytes (JSON-RPC result: text + structured content):")
        print(f"  {'call':<30}" + "".join(f"{tier:>12}" for tier in TIER_CAPS))
        sizes: dict[str, list[str]] = {label: [] for label, _, _ in CALLS}
        for token in tokens.values():
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                async with Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as client:
                    for label, tool, arguments in CALLS:
                        result = await client.call_tool(tool, arguments)
                        wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                        size = len(json.dumps(wire, ensure_ascii=False).encode())
                        sizes[label].append(f"{size / 1000:.1f} kB" + (" (refused)" if result.is_error else ""))
        for label, row in sizes.items():
            print(f"  {label:<30}" + "".join(f"{cell:>12}" for cell in row))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO / "tests" / "data" / "exploits")
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--root", type=Path, default=REPO, help="checkout whose code is measured")
    args = parser.parse_args(argv)
    if not (args.shared / "exploits.jsonl").is_file():
        print(f"no exploits.jsonl in {args.shared}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.root.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(in_process(args.shared, args.searches, Path(tmp)))
        asyncio.run(answer_bytes(args.root.resolve(), args.shared, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
