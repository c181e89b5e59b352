"""Core figures, measured side by side in one run (printed, never asserted):

1. authorize() decisions per second on SQLite, in-process, one event loop (goal >= 20,000/s);
2. tool calls per second over streamable HTTP, authorization on (`kamiyo-mcp serve`) vs. a bare
   server running the same tool with no authorization (goal: ratio >= 0.95).

    python bench/bench_core.py [--seconds 8] [--sessions 8] [--decisions 40000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from billing.access import Grant
from billing.authority import Authority
from billing.store import SQLiteStore
from billing.tokens import TokenCodec

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-" + "b" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def issue_tokens(db: Path, count: int) -> list[str]:
    store = await SQLiteStore.open(db)
    authority = Authority(store, TokenCodec(SECRET), public_url="http://127.0.0.1")
    tokens = [(await authority.issue_grant(f"bench{i}@example.com", "enterprise")).token for i in range(count)]
    await store.close()
    return tokens


async def bench_authorize(db: Path, tokens: list[str], decisions: int, concurrency: int = 64) -> float:
    store = await SQLiteStore.open(db)
    authority = Authority(store, TokenCodec(SECRET), public_url="http://127.0.0.1")
    granted = 0
    queue = iter(range(decisions))

    async def worker() -> None:
        nonlocal granted
        for i in queue:
            if isinstance(await authority.authorize(tokens[i % len(tokens)], "get_account_status"), Grant):
                granted += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await store.close()
    if granted != decisions:
        print(f"  warning: {decisions - granted} decisions were denials")
    return decisions / elapsed


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url + "/mcp", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{cmd} did not start")


async def tool_calls_per_second(url: str, tokens: list[str], sessions: int, seconds: float) -> float:
    calls = 0
    stop = time.perf_counter() + seconds
    # Each request carries the next of many tokens: one subscription's quota (600/min) would
    # otherwise be the bottleneck, not the server.
    rotation = itertools.cycle(tokens)

    async def bearer(request: httpx2.Request) -> None:
        request.headers["Authorization"] = f"Bearer {next(rotation)}"

    async def session(index: int) -> None:
        nonlocal calls
        async with httpx2.AsyncClient(event_hooks={"request": [bearer]}, timeout=30) as http:
            async with Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as client:
                while time.perf_counter() < stop:
                    result = await client.call_tool("get_account_status", {})
                    if result.is_error:
                        raise RuntimeError(f"tool call refused during the benchmark: {result.content}")
                    calls += 1

    start_time = time.perf_counter()
    await asyncio.gather(*(session(i) for i in range(sessions)))
    return calls / (time.perf_counter() - start_time)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        tokens = await issue_tokens(db, 1000)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")

        rates = [await bench_authorize(db, tokens, args.decisions) for _ in range(args.rounds)]
        print(f"authorize() on SQLite: {statistics.median(rates):,.0f} decisions/s "
              f"(median of {args.rounds}; runs {', '.join(f'{r:,.0f}' for r in rates)}; goal >= 20,000/s)")

        env = {**os.environ, "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": SECRET, "KAMIYO_LOG_LEVEL": "WARNING",
               "KAMIYO_INTEL_SOURCES": ""}
        port_auth, port_bare = free_port(), free_port()
        servers = {
            "authorized": (f"http://127.0.0.1:{port_auth}",
                           [sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port_auth)]),
            "bare": (f"http://127.0.0.1:{port_bare}",
                     [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(db), str(port_bare), tokens[0]]),
        }
        results: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            for name, (url, cmd) in servers.items():
                process = start(cmd, env, url)
                try:
                    await tool_calls_per_second(url, tokens, args.sessions, 1.0)  # warm-up
                    results[name].append(await tool_calls_per_second(url, tokens, args.sessions, args.seconds))
                finally:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:  # open SSE streams can hold a graceful stop
                        process.kill()
                        process.wait(timeout=10)
        auth, bare = statistics.median(results["authorized"]), statistics.median(results["bare"])
        print(f"tool calls over streamable HTTP, {args.sessions} sessions: authorized {auth:,.0f}/s, "
              f"bare {bare:,.0f}/s, ratio {auth / bare:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    asyncio.run(main())
