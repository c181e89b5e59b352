"""Core figures, measured side by side in one run (printed, never asserted):

1. cold-token decisions against their floor, with 10,000 distinct tokens (`cold_tokens.py`);
2. server-bound tool calls: `kamiyo-mcp serve` vs. a bare `MCPServer` running the same tool bodies
   with no authorization (`bare_server.py`), driven by a raw keep-alive HTTP/1.1 client
   (`raw_http.py`) at 8 and 32 connections, in both protocol eras (2025-11-25 sessions, 2026-07-28
   stateless requests), for a cheap tool (`get_account_status`) and for search, in interleaved
   rounds; calls/s and server CPU per call (utime + stime of the server process, /proc/PID/stat);
   with an A/A control: a second, identical bare server in the same rounds, whose ratio to the
   first shows how far this machine's noise alone moves a ratio (skip it with --no-control);
3. the same with the official MCP client (8 sessions), which saturates a core before either server:
   client-bound, kept for comparison with earlier figures.

    python bench/bench_core.py [--seconds 2] [--rounds 6] [--cold-tokens 10000] [--skip-cold] [--skip-sdk]
                               [--no-control] [--only TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cold_tokens  # noqa: E402
import httpx  # noqa: E402
from raw_http import SESSION, STATELESS, Call, Connection, drive, open_session, session_calls, stateless_calls  # noqa: E402
from sdk_client import sdk_calls_per_second  # noqa: E402

from billing.authority import Authority  # noqa: E402
from billing.store import SQLiteStore  # noqa: E402
from billing.tokens import TokenCodec  # noqa: E402

SECRET = "bench-secret-" + "b" * 40
TOKENS = 400  # enterprise grants: 600 calls/min each, far above what one server process serves
CALLS = {"cheap": Call("get_account_status", {}),
         "search": Call("search_crypto_exploits", {"query": "flash loan", "limit": 10})}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None
    figures: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # config -> (calls/s, cpu/call)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/mcp", timeout=1).status_code in (400, 401, 405, 406):
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # open SSE streams can hold a graceful stop
                self.process.kill()
                self.process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def issue_tokens(db: Path, count: int) -> list[str]:
    store = await SQLiteStore.open(db)
    try:
        authority = Authority(store, TokenCodec(SECRET), public_url="http://127.0.0.1")
        return [(await authority.issue_grant(f"bench{i}@example.com", "enterprise")).token for i in range(count)]
    finally:
        await store.close()


@dataclass
class Load:
    """One configuration's open connections (and sessions) on one server, ready to be driven again."""

    server: Server
    conns: list[Connection]
    streams: list[Iterator[bytes]]

    @classmethod
    async def open(cls, server: Server, era: str, call: Call, connections: int, tokens: list[str]) -> Load:
        conns = [await Connection.open("127.0.0.1", server.port) for _ in range(connections)]
        share = len(tokens) // connections
        streams: list[Iterator[bytes]] = []
        for i, conn in enumerate(conns):
            if era == SESSION:  # a connection rotates over sessions of its own tokens (a session is one token's)
                own = tokens[i * share:(i + 1) * share]
                streams.append(session_calls(conn.host, [(t, await open_session(conn, t)) for t in own], call))
            else:
                streams.append(stateless_calls(conn.host, tokens[i * share:] + tokens[:i * share], call))
        load = cls(server, conns, streams)
        await load.measure(1.0)  # warm-up
        return load

    async def measure(self, seconds: float) -> tuple[float, float]:
        """(calls/s, server CPU seconds per call) over `seconds`."""
        loop = asyncio.get_running_loop()
        cpu, started = self.server.cpu_seconds(), loop.time()
        done = sum(await asyncio.gather(*(drive(c, s, started + seconds)
                                          for c, s in zip(self.conns, self.streams, strict=True))))
        return done / (loop.time() - started), (self.server.cpu_seconds() - cpu) / done

    async def close(self) -> None:
        for conn in self.conns:
            await conn.close()


async def server_bound(servers: list[Server], tokens: list[str], seconds: float, rounds: int, only: str) -> None:
    configs = [(era, kind, n) for era in (SESSION, STATELESS) for kind in CALLS for n in (8, 32)
               if only in f"{era}|{kind}|{n}"]
    loads = {(config, s.name): await Load.open(s, config[0], CALLS[config[1]], config[2], tokens)
             for config in configs for s in servers}
    client = time.process_time()
    calls = 0
    try:
        for r in range(rounds):  # each config on both servers back to back, the order alternating by round
            for config in configs:
                for server in servers if r % 2 == 0 else servers[::-1]:
                    rate, cpu = await loads[config, server.name].measure(seconds)
                    calls += int(rate * seconds)
                    server.figures.setdefault("|".join(map(str, config)), []).append((rate, cpu))
    finally:
        for load in loads.values():
            await load.close()
    client_cpu = (time.process_time() - client) / calls
    kamiyo, bare, *control = servers
    print(f"server-bound: raw keep-alive HTTP/1.1 client; {rounds} rounds of {seconds:g} s per server and "
          "config, the servers back to back in each round (order reversed every other round); ratios are the "
          "median of the per-round ratios")
    print("  era        | tool   | conns | kamiyo calls/s | bare calls/s | ratio | kamiyo CPU/call | bare CPU/call "
          "| CPU ratio" + (" | control: bare-2 ÷ bare (calls/s, CPU)" if control else ""))
    for era, kind, n in configs:
        key = f"{era}|{kind}|{n}"
        k, b = kamiyo.figures[key], bare.figures[key]
        rate, cpu = _paired(k, b)
        row = (f"  {era} | {kind:6} | {n:5} | {statistics.median(x[0] for x in k):14,.0f} | "
               f"{statistics.median(y[0] for y in b):12,.0f} | {rate:5.3f} | "
               f"{statistics.median(x[1] for x in k) * 1e6:12,.0f} us | "
               f"{statistics.median(y[1] for y in b) * 1e6:10,.0f} us | {cpu:5.3f}")
        if control:
            c_rate, c_cpu = _paired(control[0].figures[key], b)
            row += f" | {c_rate:5.3f}, {c_cpu:5.3f}"
        print(row)
    print(f"  (goals: ratio >= 0.95, CPU ratio <= 1.05; the load client used {client_cpu * 1e6:.0f} us of CPU "
          "per call)")
    if control:
        print("  control: a second, identical bare server measured in the same rounds; its distance from 1.000 is "
              "what this machine's noise alone does to a ratio")


def _paired(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> tuple[float, float]:
    """Median of the per-round ratios a ÷ b: (calls/s, CPU per call)."""
    return (statistics.median(x[0] / y[0] for x, y in zip(a, b, strict=True)),
            statistics.median(x[1] / y[1] for x, y in zip(a, b, strict=True)))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cold-tokens", type=int, default=10_000)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--no-control", action="store_true", help="skip the second bare server (the A/A control)")
    parser.add_argument("--only", default="", help="run only configs containing this text, e.g. '2025-11-25|cheap|8'")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores ({os.getloadavg()[0]:.1f} load when started), Python "
          f"{sys.version.split()[0]}; servers, load client and store share the machine")

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_cold:
            # tmpfs when there is one: setting up 10,000 grants is 10,000 fsyncs on a disk.
            shm = Path("/dev/shm")
            with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as cold:
                await cold_tokens.run(Path(cold), SECRET, args.cold_tokens, args.rounds)

        db = Path(tmp) / "bench.db"
        tokens = await issue_tokens(db, TOKENS)
        env = {**os.environ, "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": SECRET, "KAMIYO_LOG_LEVEL": "WARNING",
               "KAMIYO_INTEL_SOURCES": "", "PYTHONPATH": str(ROOT)}
        loaded = subprocess.run([sys.executable, "-m", "kamiyo_mcp", "ingest", str(ROOT / "tests/data/exploits")],
                                env=env, cwd=ROOT, capture_output=True, text=True)
        if loaded.returncode != 0:
            raise RuntimeError(loaded.stderr)
        kamiyo_port, bare_port = free_port(), free_port()
        servers = [
            Server("kamiyo", [sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(kamiyo_port)], kamiyo_port),
            Server("bare", [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(db), str(bare_port)],
                   bare_port),
        ]
        if not args.no_control:
            control_port = free_port()
            servers.append(Server("bare-2", [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(db),
                                             str(control_port)], control_port))
        try:
            for server in servers:
                server.start({**env, "KAMIYO_BENCH_TOKEN": tokens[0]} if server.name.startswith("bare") else env)
            await server_bound(servers, tokens, args.seconds, args.rounds, args.only)
            if not args.skip_sdk:
                rates: dict[str, list[float]] = {s.name: [] for s in servers[:2]}
                fresh = iter(range(0, 10 * len(tokens), 8))  # 8 tokens a round: none reaches 600 calls a minute
                for r in range(args.rounds):
                    for server in servers[:2] if r % 2 == 0 else servers[1::-1]:
                        start = next(fresh) % len(tokens)
                        rates[server.name].append(await sdk_calls_per_second(server.url, tokens[start:start + 8], 8,
                                                                             args.seconds))
                k, b = statistics.median(rates["kamiyo"]), statistics.median(rates["bare"])
                print(f"client-bound (official MCP client, 8 sessions, get_account_status): kamiyo {k:,.0f}/s, "
                      f"bare {b:,.0f}/s, ratio {k / b:.3f} — the client, not the server, is the bottleneck")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    asyncio.run(main())
