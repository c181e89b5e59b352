"""Webhook figures (printed, never asserted), against a real server process on a loopback port:

1. verified webhooks per second and client-side p50/p99 latency, every event distinct and applied
   with the store's write connection at synchronous=FULL (goal >= 500/s, p99 < 20 ms);
2. revocation staleness: with MCP sessions calling a tool in a loop, how many calls that were sent
   after a `customer.subscription.deleted` was answered 200 are still granted (goal: 0).

    python bench/bench_webhooks.py [--events 3000] [--concurrency 4] [--rounds 20] [--callers 4]
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
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "tests" / "data" / "stripe" / "events"
SECRET = "whsec_bench_0123456789abcdef"
PATH = "/api/v1/webhooks/stripe"
SUBSCRIPTION, CUSTOMER = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw", "cus_QXg1o8vcGmoR32"
LIFECYCLE = ("customer.subscription.created", "checkout.session.completed", "invoice.payment_succeeded",
             "customer.subscription.updated", "invoice.payment_failed", "customer.subscription.deleted")


def environment(db: Path, url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": "bench-secret-" + "x" * 40, "KAMIYO_INTEL_SOURCES": "",
        "KAMIYO_PUBLIC_URL": url, "KAMIYO_LOG_LEVEL": "WARNING", "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_PRICE_MCP_PERSONAL": "price_1PgafmB7WZ01zgkW6dKueIc5",
        "STRIPE_PRICE_MCP_TEAM": "price_1PgafmB7WZ01zgkW02Hf9z6c",
    }


# ---- the server (a subprocess: `--serve`) ---------------------------------------------------------

def serve(port: int) -> None:
    import uvicorn

    from billing.http.webhooks import webhook_routes
    from kamiyo_mcp.app import create_app
    from kamiyo_mcp.settings import load_settings

    settings = load_settings(os.environ)
    app = create_app(settings)
    if not any(getattr(route, "path", None) == PATH for route in app.router.routes):  # until app.py wires it
        runtime = app.state.runtime
        for route in webhook_routes(lambda: runtime.store, settings.billing):
            app.router.routes.insert(0, route)
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

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {PATH} HTTP/1.1\r\nHost: {self.host}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                          .encode() + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return int(status_line.split()[1]), json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


async def throughput(port: int, events: int, concurrency: int) -> None:
    # Signed up front (well inside the 300 s tolerance), so the timed loop only sends and reads.
    groups = [[(body, signed(body)) for body in (event_body(name, f"b{g}", 1_800_000_000 + i)
                                                 for i, name in enumerate(LIFECYCLE))]
              for g in range(events // len(LIFECYCLE))]
    latencies: list[float] = []
    server_ms: list[float] = []
    statuses: dict[str, int] = {}

    async def sender(connection: Connection) -> None:
        while groups:
            for body, headers in groups.pop():  # one subscription's lifecycle, in order
                started = time.perf_counter()
                _, answer = await connection.post(body, headers)
                latencies.append(time.perf_counter() - started)
                status = answer.get("status") or answer["error"]["code"]
                statuses[status] = statuses.get(status, 0) + 1
                server_ms.append(answer.get("processing_time_ms", 0.0))

    connections = [await Connection.open(port) for _ in range(concurrency)]
    try:
        await connections[0].post(b"{}", {"Stripe-Signature": "t=1,v1=0"})  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(sender(c) for c in connections))
        elapsed = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    count = len(latencies)
    ordered = sorted(latencies)
    print(f"1. verified webhooks: {count} distinct events, {concurrency} concurrent senders (keep-alive), "
          "store synchronous=FULL")
    print(f"   {count / elapsed:,.0f} webhooks/s (goal >= 500/s); answers {statuses}")
    print(f"   latency at the client p50 {statistics.median(ordered) * 1000:.2f} ms, "
          f"p99 {ordered[int(count * 0.99) - 1] * 1000:.2f} ms (goal p99 < 20 ms); "
          f"server processing p50 {statistics.median(server_ms):.2f} ms, "
          f"p99 {sorted(server_ms)[int(count * 0.99) - 1]:.2f} ms")


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
    print(f"2. revocation staleness over {rounds} deletions, {callers} MCP sessions calling in a loop each:")
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
            print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; server: kamiyo app in uvicorn "
                  "(one process), client in another")
            await throughput(port, args.events, args.concurrency)
            await staleness(url, db, env, args.rounds, args.callers)
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--callers", type=int, default=4)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
