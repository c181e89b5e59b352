"""Scale-out figures (printed, never asserted): one `serve` on SQLite vs. several on one PostgreSQL.

1. tool calls per second over streamable HTTP, the MCP sessions spread round-robin over the
   processes (the client plays the load balancer), each request carrying the next of many tokens;
2. verified webhooks per second, every event distinct, the senders spread over the processes.

PostgreSQL is a throwaway cluster (tests/postgres_cluster.py) unless --postgres-url names a server
database from which a bench database may be created. Every process, the database and the client
share this machine's CPUs: on a small machine more processes mostly share the same cores.

    python bench/bench_scale.py [--processes 1 2 3] [--seconds 6] [--sessions 8] [--events 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx2
from bench_core import free_port
from bench_webhooks import LIFECYCLE, Connection, event_body, signed
from bench_webhooks import environment as webhook_environment
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from billing.authority import Authority
from billing.store import open_store
from billing.tokens import TokenCodec
from kamiyo_mcp.settings import intel_file_beside

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.postgres_cluster import start_cluster  # noqa: E402  (the repository root, for the test helper)

SECRET = "bench-secret-" + "x" * 40  # bench_webhooks' environment() uses this secret too


# ---- servers -------------------------------------------------------------------------------------

def server_env(database_url: str, intel: Path, url: str) -> dict[str, str]:
    return {**webhook_environment(Path("unused.db"), url), "KAMIYO_DATABASE_URL": database_url,
            "KAMIYO_INTEL_DATABASE": str(intel), "MCP_JWT_SECRET": SECRET, "KAMIYO_DATABASE_POOL_MAX": "10"}


@contextmanager
def servers(database_url: str, intel: Path, count: int) -> Iterator[list[int]]:
    """`count` server processes on one database (the app with the webhook route, as bench_webhooks runs it)."""
    ports = [free_port() for _ in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            env = server_env(database_url, intel, f"http://127.0.0.1:{port}")
            processes.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "bench_webhooks.py"), "--serve",
                                               str(port)], env=env, cwd=ROOT))
        for port, process in zip(ports, processes, strict=True):
            wait_healthy(port, process)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # open SSE streams can hold a graceful stop
                process.kill()
                process.wait(timeout=10)


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("a server exited early")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("a server did not become healthy in 60 s")


# ---- load ----------------------------------------------------------------------------------------

async def issue_tokens(database_url: str, count: int) -> list[str]:
    store = await open_store(database_url)
    try:
        authority = Authority(store, TokenCodec(SECRET), public_url="http://127.0.0.1")
        return [(await authority.issue_grant(f"bench{i}@example.com", "enterprise")).token for i in range(count)]
    finally:
        await store.close()


async def tool_calls_per_second(ports: list[int], tokens: list[str], sessions: int, seconds: float) -> float:
    calls = 0
    stop = time.perf_counter() + seconds
    rotation = itertools.cycle(tokens)  # one subscription's quota would otherwise be the bottleneck

    async def bearer(request: httpx2.Request) -> None:
        request.headers["Authorization"] = f"Bearer {next(rotation)}"

    async def session(port: int) -> None:
        nonlocal calls
        async with httpx2.AsyncClient(event_hooks={"request": [bearer]}, timeout=30) as http:
            url = f"http://127.0.0.1:{port}/mcp"
            async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
                while time.perf_counter() < stop:
                    result = await client.call_tool("get_account_status", {})
                    if result.is_error:
                        raise RuntimeError(f"tool call refused during the benchmark: {result.content}")
                    calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(session(ports[i % len(ports)]) for i in range(sessions)))
    return calls / (time.perf_counter() - started)


async def webhooks_per_second(ports: list[int], events: int, senders: int, tag: str) -> tuple[float, dict[str, int]]:
    # Signed up front (well inside the 300 s tolerance), so the timed loop only sends and reads.
    groups = [[(body, signed(body)) for body in (event_body(name, f"{tag}{g}", 1_800_000_000 + i)
                                                 for i, name in enumerate(LIFECYCLE))]
              for g in range(events // len(LIFECYCLE))]
    statuses: dict[str, int] = {}
    sent = 0

    async def sender(connection: Connection) -> None:
        nonlocal sent
        while groups:
            for body, headers in groups.pop():  # one subscription's lifecycle, in order
                _, answer = await connection.post(body, headers)
                status = answer.get("status") or answer["error"]["code"]
                statuses[status] = statuses.get(status, 0) + 1
                sent += 1

    connections = [await Connection.open(ports[i % len(ports)]) for i in range(senders)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(sender(c) for c in connections))
        elapsed = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return sent / elapsed, statuses


# ---- the run -------------------------------------------------------------------------------------

async def fresh_postgres_database(server_url: str) -> str:
    name = "kamiyo_bench_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


async def measure(label: str, database_url: str, intel: Path, count: int, args: argparse.Namespace,
                  rows: list[tuple[str, float, float, str]]) -> None:
    tokens = await issue_tokens(database_url, args.tokens)
    with servers(database_url, intel, count) as ports:
        await tool_calls_per_second(ports, tokens, args.sessions, 1.0)  # warm-up
        calls = [await tool_calls_per_second(ports, tokens, args.sessions, args.seconds) for _ in range(args.rounds)]
        hooks, statuses = await webhooks_per_second(ports, args.events, args.senders, f"{label[:2]}{count}")
    rows.append((label, statistics.median(calls), hooks, ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))))


async def run(args: argparse.Namespace) -> None:
    cluster = None if args.postgres_url else start_cluster()
    server_url = args.postgres_url or (cluster.url if cluster else "")
    rows: list[tuple[str, float, float, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kamiyo-bench-scale-") as tmp:
            sqlite = Path(tmp) / "kamiyo.db"
            await measure("1 process, SQLite", str(sqlite), intel_file_beside(sqlite), 1, args, rows)
            for count in args.processes:
                database = await fresh_postgres_database(server_url)
                label = f"{count} process{'es' if count > 1 else ''}, PostgreSQL"
                await measure(label, database, Path(tmp) / f"intel{count}.db", count, args, rows)
    finally:
        if cluster:
            cluster.stop()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; servers, database and client share them")
    print(f"tool calls: {args.sessions} MCP sessions, median of {args.rounds} x {args.seconds:g} s; "
          f"webhooks: {args.events} distinct events, {args.senders} keep-alive senders")
    print(f"{'setup':<28} {'tool calls/s':>13} {'webhooks/s':>11}  webhook answers")
    for label, calls, hooks, answers in rows:
        print(f"{label:<28} {calls:>13,.0f} {hooks:>11,.0f}  {answers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--events", type=int, default=1200)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--postgres-url", help="a server database from which a bench database is created")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
