"""Webhook figures (printed, never asserted), against a real server process on a loopback port:

1. verified webhooks per second, client-side p50/p99 latency and server CPU per event, every event
   distinct and applied with the store's billing connection at synchronous=FULL (goal >= 1,000/s with
   4 senders, p99 < 20 ms), side by side, in interleaved rounds, with the floor: an endpoint of the
   same server (same app, middleware and route kind) that only verifies the signature and parses
   the event; and what verifying and parsing cost in-process, with no HTTP at all;
2. where the time goes, in-process: the processor against the floor of its own transactions replayed
   raw (the same SQL in the same transactions, fsync included; see webhook_transaction.py);
3. revocation staleness: with MCP sessions calling a tool in a loop, how many calls that were sent
   after a `customer.subscription.deleted` was answered 200 are still granted (goal: 0).

    python bench/bench_webhooks.py [--events 3000] [--concurrency 4] [--throughput-rounds 5] [--rounds 20]
                                   [--callers 4] [--tx-rounds 7] [--tx-events 900]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, in this process and (PYTHONPATH) in the server's
EVENTS = REPO / "tests" / "data" / "stripe" / "events"
SECRET = "whsec_bench_0123456789abcdef"
PATH = "/api/v1/webhooks/stripe"
FLOOR_PATH = "/bench/verify-and-parse"  # served by the bench's server process only
SUBSCRIPTION, CUSTOMER = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw", "cus_QXg1o8vcGmoR32"
LIFECYCLE = ("customer.subscription.created", "checkout.session.completed", "invoice.payment_succeeded",
             "customer.subscription.updated", "invoice.payment_failed", "customer.subscription.deleted")


def environment(db: Path, url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "PYTHONPATH": str(REPO),
        "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": "bench-secret-" + "x" * 40, "KAMIYO_INTEL_SOURCES": "",
        "KAMIYO_PUBLIC_URL": url, "KAMIYO_LOG_LEVEL": "WARNING", "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_PRICE_MCP_PERSONAL": "price_1PgafmB7WZ01zgkW6dKueIc5",
        "STRIPE_PRICE_MCP_TEAM": "price_1PgafmB7WZ01zgkW02Hf9z6c",
    }


# ---- the server (a subprocess: `--serve`) ---------------------------------------------------------

def serve(port: int) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from billing.http.endpoint import json_route
    from billing.webhooks.event import parse_event
    from billing.webhooks.signature import verify_signature
    from kamiyo_mcp.app import create_app
    from kamiyo_mcp.settings import load_settings

    settings = load_settings(os.environ)
    app = create_app(settings)

    async def verify_and_parse(request: Request) -> Response:
        """The floor: what every delivery costs before our processing (same app, middleware and route kind)."""
        started = time.perf_counter()
        body = await request.body()
        verify_signature(body, request.headers["stripe-signature"], SECRET, tolerance=300)
        event = parse_event(body.decode("utf-8"))
        return JSONResponse({"status": "verified", "message": "not applied", "event_id": event.id,
                             "event_type": event.type,
                             "processing_time_ms": round((time.perf_counter() - started) * 1000, 3)})

    app.router.routes.insert(0, json_route(FLOOR_PATH, verify_and_parse, {"POST"}))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited early")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the server did not start in 30 s")


# ---- events --------------------------------------------------------------------------------------

TEMPLATES = {name: json.loads((EVENTS / f"{name}.json").read_text()) for name in LIFECYCLE}


def event_body(name: str, suffix: str, created: int) -> bytes:
    event = TEMPLATES[name]
    olds = {SUBSCRIPTION, CUSTOMER, event["id"], event["data"]["object"]["id"]}
    pattern = re.compile("|".join(re.escape(o) for o in sorted(olds, key=len, reverse=True)))
    body = json.loads(pattern.sub(lambda m: f"{m[0]}_{suffix}", json.dumps(event)))
    body["created"] = created
    return json.dumps(body).encode()


def signed(payload: bytes) -> dict[str, str]:
    t = int(time.time())
    sig = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


# ---- 1. throughput and latency -------------------------------------------------------------------

class Connection:
    """A minimal HTTP/1.1 keep-alive client: on a 2-CPU machine httpx's own CPU would be measured too."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, f"127.0.0.1:{port}")

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                          .encode() + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return int(status_line.split()[1]), json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


@dataclass
class Round:
    """One timed pass of signed deliveries to one endpoint."""

    rate: float  # deliveries answered per second
    cpu_ms: float  # server CPU (all its threads) per delivery
    latencies: list[float]
    answers: dict[str, int]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def lifecycles(tag: str, events: int) -> list[list[tuple[bytes, dict[str, str]]]]:
    """`events` distinct deliveries, as whole subscription lifecycles in order, signed now."""
    return [[(body, signed(body)) for body in (event_body(name, f"{tag}{g}", 1_800_000_000 + i)
                                                for i, name in enumerate(LIFECYCLE))]
            for g in range(max(1, events // len(LIFECYCLE)))]


async def drive(port: int, pid: int, path: str, groups: list[list[tuple[bytes, dict[str, str]]]],
                concurrency: int) -> Round:
    """Send `groups` over `concurrency` keep-alive connections, each sending one lifecycle in order."""
    latencies: list[float] = []
    answers: dict[str, int] = {}
    groups = list(groups)

    async def sender(connection: Connection) -> None:
        while groups:
            for body, headers in groups.pop():
                started = time.perf_counter()
                _, answer = await connection.post(path, body, headers)
                latencies.append(time.perf_counter() - started)
                status = answer.get("status") or answer["error"]["code"]
                answers[status] = answers.get(status, 0) + 1

    connections = [await Connection.open(port) for _ in range(concurrency)]
    try:
        cpu, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(sender(c) for c in connections))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    finally:
        for connection in connections:
            connection.close()
    return Round(len(latencies) / elapsed, cpu * 1000 / len(latencies), latencies, answers)


def verify_parse_in_process(seconds: float = 1.0) -> float:
    """Deliveries per second that verifying and parsing alone allow, one loop on one core."""
    from billing.webhooks.event import parse_event
    from billing.webhooks.signature import verify_signature

    bodies = [(body, headers["Stripe-Signature"]) for group in lifecycles("p", 60) for body, headers in group]
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for body, header in bodies:
            verify_signature(body, header, SECRET, tolerance=300)
            parse_event(body.decode("utf-8"))
        done += len(bodies)
    return done / (time.perf_counter() - started)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


async def throughput(port: int, pid: int, events: int, concurrency: int, rounds: int) -> None:
    per_round = max(len(LIFECYCLE), events // rounds)
    warm = await Connection.open(port)
    await warm.post(PATH, b"{}", {"Stripe-Signature": "t=1,v1=0"})
    warm.close()
    await drive(port, pid, FLOOR_PATH, lifecycles("w", 120), concurrency)  # warm up both paths
    await drive(port, pid, PATH, lifecycles("w", 120), concurrency)
    results: dict[str, list[Round]] = {FLOOR_PATH: [], PATH: []}
    for r in range(rounds):  # interleaved, so a change in the machine's load touches both alike
        for path in (FLOOR_PATH, PATH):
            results[path].append(await drive(port, pid, path, lifecycles(f"r{r}", per_round), concurrency))
    rows = {}
    for path, label in ((FLOOR_PATH, "verify + parse only (floor)"), (PATH, "kamiyo: verified and applied")):
        done = results[path]
        ordered = sorted(x for one in done for x in one.latencies)
        answers: dict[str, int] = {}
        for one in done:
            for status, count in one.answers.items():
                answers[status] = answers.get(status, 0) + count
        rows[path] = (statistics.median(one.rate for one in done), statistics.median(ordered) * 1000,
                      percentile(ordered, 0.99), statistics.median(one.cpu_ms for one in done), label, answers)
    print(f"1. verified webhooks: {concurrency} concurrent senders (raw keep-alive HTTP/1.1, one subscription's "
          f"lifecycle in order each), every event distinct, store synchronous=FULL; {rounds} interleaved rounds of "
          f"{per_round} events per endpoint, same server process")
    print(f"   {'':30} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'server CPU ms/event':>20}")
    for rate, p50, p99, cpu, label, _ in rows.values():
        print(f"   {label:30} {rate:9,.0f} {p50:7.2f} {p99:7.2f} {cpu:20.3f}")
    floor, ours = rows[FLOOR_PATH], rows[PATH]
    print(f"   ratio kamiyo / floor: {ours[0] / floor[0]:.2f} in events/s, {ours[3] / floor[3]:.2f} in server CPU "
          f"per event (goal: >= 1,000 events/s and p99 < 20 ms applied)")
    print(f"   answers: floor {floor[5]}, kamiyo {ours[5]}")
    print(f"   verify + parse alone in-process (one loop, no HTTP): {verify_parse_in_process():,.0f} /s")


# ---- 2. revocation staleness ---------------------------------------------------------------------

async def mint(db: Path, env: dict[str, str], subscription_id: str) -> str:
    from billing.store.records import AuditEntry, NewToken
    from billing.tokens import token_hash
    from kamiyo_mcp.runtime import Runtime
    from kamiyo_mcp.settings import load_settings

    async with Runtime(load_settings(env)).opened() as runtime:
        user_id = await runtime.store.find_user_id("example@example.com")
        assert user_id is not None
        now = runtime.authority.now()
        token, claims = runtime.codec.mint(sub=user_id, tier="personal", sid=subscription_id, now=now,
                                           expires_at=now + 86_400)
        new = NewToken(claims.jti, user_id, subscription_id, token_hash(token), now, claims.exp)
        await runtime.store.insert_token(new, now=now, audit=AuditEntry("bench", "token.issue", claims.jti))
        return token


async def staleness_round(url: str, http: httpx.AsyncClient, db: Path, env: dict[str, str], suffix: str,
                         callers: int) -> tuple[int, int, int]:
    """(granted after the 200, granted before it, refused after it) for one subscription's deletion."""
    for i, name in enumerate(("customer.subscription.created", "checkout.session.completed")):
        body = event_body(name, suffix, 1_900_000_000 + i)
        assert (await http.post(PATH, content=body, headers=signed(body))).status_code == 200
    token = await mint(db, env, f"{SUBSCRIPTION}_{suffix}")
    calls: list[tuple[float, bool]] = []
    answered: list[float] = []

    async def caller() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client_http:
            async with Client(streamable_http_client(url + "/mcp", http_client=client_http), mode="legacy") as client:
                # Call until this session has made two calls sent after the deletion was answered.
                while sum(1 for sent, _ in calls if answered and sent > answered[0]) < 2 * callers:
                    sent = time.perf_counter()
                    result = await client.call_tool("get_account_status", {})
                    calls.append((sent, not result.is_error))

    async def delete() -> None:
        while len(calls) < 3 * callers:  # every session open and calling
            await asyncio.sleep(0.002)
        body = event_body("customer.subscription.deleted", suffix, 1_900_000_100)
        response = await http.post(PATH, content=body, headers=signed(body))
        answered.append(time.perf_counter())
        assert response.status_code == 200, response.text

    await asyncio.wait_for(asyncio.gather(delete(), *(caller() for _ in range(callers))), timeout=60)
    after = [ok for sent, ok in calls if sent > answered[0]]
    return sum(after), sum(1 for sent, ok in calls if ok and sent <= answered[0]), after.count(False)


async def staleness(url: str, db: Path, env: dict[str, str], rounds: int, callers: int) -> None:
    totals = [0, 0, 0]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for r in range(rounds):
            for i, value in enumerate(await staleness_round(url, http, db, env, f"s{r}", callers)):
                totals[i] += value
    stale, granted_before, refused_after = totals
    print(f"3. revocation staleness over {rounds} deletions, {callers} MCP sessions calling in a loop each:")
    print(f"   {stale} calls granted after the deletion's 200 (goal 0); {granted_before} granted before it, "
          f"{refused_after} refused after it")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kamiyo-bench-webhooks-") as tmp:
        db = Path(tmp) / "kamiyo.db"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        env = environment(db, url)
        server = start_server(env, port)
        try:
            load = os.getloadavg()[0]
            busy = " (other work shares the CPUs: absolute figures are depressed, ratios hold)" if load > 1.5 else ""
            print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {load:.1f} at the "
                  f"start{busy}; server: the kamiyo app in uvicorn (one process, as `serve` runs it), "
                  "load client in another")
            await throughput(port, server.pid, args.events, args.concurrency, args.throughput_rounds)
            if args.tx_rounds:
                from webhook_transaction import transaction_floor

                from kamiyo_mcp.settings import load_settings

                await transaction_floor(load_settings(env).billing, lifecycles, events=args.tx_events,
                                        rounds=args.tx_rounds, senders=args.concurrency)
            await staleness(url, db, env, args.rounds, args.callers)
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--throughput-rounds", type=int, default=5, help="interleaved rounds of floor and kamiyo")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--tx-rounds", type=int, default=7, help="alternating rounds of processor and raw replay")
    parser.add_argument("--tx-events", type=int, default=900, help="events per round of the in-process comparison")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
