"""Metering figures, measured side by side in one run (printed, never asserted):

1. server-bound: `get_account_status` calls against one `kamiyo-mcp serve`, overage calls (every call
   past the daily quota: metered, its meter event written in the deciding trip and on disk before
   the call is answered) vs. calls within the quota of the same tier, driven by the raw keep-alive
   HTTP/1.1 client of `raw_http.py` (through `bench_core.Load`) at 8 and 32 connections, in both
   protocol eras (2025-11-25 sessions, 2026-07-28 stateless requests), in interleaved rounds: calls/s
   and server CPU per call (utime + stime of the server process), ratios as the median of the
   rounds' paired ratios (goal: overage ÷ within quota >= 0.95);
2. client-bound: the same through the official MCP client (8 sessions), which saturates a core of
   its own before the server does (kept for comparison with earlier figures);
3. meter events delivered per second by the sender to the fake Stripe over HTTP (its pace set to
   Stripe's live-mode limit, 1,000/s).

Rounds are shorter than the events' settle delay (METER_SETTLE_SECONDS), and after every overage
round the script waits until the sender has delivered its events (timed, reported, in no round), so
the delivery (and the fake Stripe's work, on this same machine) never falls inside a timed round.
The fake Stripe runs in a process of its own (bench/fake_stripe.py).

    python bench/bench_metering.py [--seconds 2] [--rounds 6] [--only '2025-11-25|8'] [--sdk-seconds 4]
        [--sdk-rounds 7] [--sessions 8] [--events 3000] [--skip-sdk] [--skip-sender]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from bench_core import Load, Server, free_port  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from raw_http import SESSION, STATELESS, Call  # noqa: E402

from billing.config import BillingConfig  # noqa: E402
from billing.meter_sender import MeterEventSender  # noqa: E402
from billing.quota import windows  # noqa: E402
from billing.store import SQLiteStore  # noqa: E402
from billing.store.call_sql import METER_SETTLE_SECONDS  # noqa: E402
from billing.store.meter_sql import write_overage  # noqa: E402
from billing.store.records import AuditEntry, NewToken  # noqa: E402
from billing.stripe_gateway import StripeGateway  # noqa: E402
from billing.subscription_state import SubscriptionState  # noqa: E402
from billing.tokens import TokenCodec, token_hash  # noqa: E402
from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE  # noqa: E402

SECRET = "bench-secret-" + "m" * 40
KEY = "sk_test_bench_metering_0123"
SEEDED_CUSTOMER = "cus_QXg1o8vcGmoR32"
# Team: a day and a minute no run fills, $0.001 per overage call, a cap no run reaches.
TIERS = ("[team]\ncalls_per_day = 100000000\ncalls_per_minute = 1000000\noverage_usd_per_1000_calls = 1.0\n"
         "overage_cap_usd = 10000000\n")
DAY_LIMIT = 100_000_000
SUBSCRIPTIONS = 32  # of each kind: one per connection at 32 connections
CHEAP = Call("get_account_status", {})
KINDS = ("overage", "within quota")


def start_fake(customers: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_stripe.py"), *customers], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


async def subscribers(store: SQLiteStore, name: str, count: int, *, past_quota: bool) -> list[str]:
    """`count` team subscriptions with overage on, one token each; `past_quota`: today's quota is used up."""
    codec, now, tokens = TokenCodec(SECRET), int(time.time()), []
    for i in range(count):
        customer, subscription = f"cus_bench_{name}_{i}", f"sub_bench_{name}_{i}"
        async with store.webhook_transaction(now) as tx:
            user_id = await tx.ensure_stripe_customer(customer, email=f"{name}{i}@example.com", name=None,
                                                      event_created=1)
            await tx.write_subscription(subscription, user_id, SubscriptionState("team", "active",
                                                                                 now + 30 * 86_400, False, 1))
            await write_overage(tx.db, subscription, item_id="si_bench", cap_cents=None, now=now)
            if past_quota:  # the day's calls already made (a bench set-up, not a store operation)
                await tx.db.execute(
                    "INSERT INTO usage (subscription_id, tier, minute_start, minute_count, minute_limit, day_start,"
                    " day_count, day_limit) VALUES (?, 'team', 0, 0, 1000000, ?, ?, ?)",
                    (subscription, windows(now).day, DAY_LIMIT, DAY_LIMIT))
        token, claims = codec.mint(sub=user_id, tier="team", sid=subscription, now=now, expires_at=now + 86_400)
        await store.insert_token(NewToken(claims.jti, user_id, subscription, token_hash(token), now, claims.exp),
                                 now=now, audit=AuditEntry("bench", "token.issue", claims.jti))
        tokens.append(token)
    return tokens


async def calls_per_second(url: str, tokens: list[str], seconds: float) -> tuple[float, int]:
    """Calls per second over one MCP session per token, and how many of the calls were metered."""
    calls = metered = 0
    stop_at = time.perf_counter() + seconds

    async def session(token: str) -> None:  # a session belongs to the token that opened it
        nonlocal calls, metered
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            async with Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as client:
                while time.perf_counter() < stop_at:
                    result = await client.call_tool("get_account_status", {})
                    if result.is_error or result.structured_content is None:
                        raise RuntimeError(f"tool call refused during the benchmark: {result.content}")
                    calls += 1
                    metered += bool(result.structured_content["overage"]["this_call_metered"])

    started = time.perf_counter()
    await asyncio.gather(*(session(token) for token in tokens))
    return calls / (time.perf_counter() - started), metered


async def setup(tmp: Path) -> tuple[Path, dict[str, list[str]], list[str]]:
    """The database with both kinds of subscriptions (their tokens by kind), and the fake's customers."""
    db = tmp / "bench.db"
    store = await SQLiteStore.open(db)
    try:
        tokens = {"overage": await subscribers(store, "over", SUBSCRIPTIONS, past_quota=True),
                  "within quota": await subscribers(store, "within", SUBSCRIPTIONS, past_quota=False)}
    finally:
        await store.close()
    return db, tokens, [f"cus_bench_{name}_{i}" for name in ("over", "within") for i in range(SUBSCRIPTIONS)]


def server_env(tmp: Path, db: Path, fake_url: str, port: int) -> dict[str, str]:
    tiers = tmp / "tiers.toml"
    tiers.write_text(TIERS)
    return {**os.environ, "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": SECRET, "KAMIYO_LOG_LEVEL": "WARNING",
            "KAMIYO_INTEL_SOURCES": "", "KAMIYO_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "KAMIYO_TIERS_FILE": str(tiers), "KAMIYO_RECONCILE_INTERVAL": "0", "STRIPE_SECRET_KEY": KEY,
            "STRIPE_API_BASE": fake_url, "STRIPE_PRICE_MCP_TEAM": "price_1PgafmB7WZ01zgkW02Hf9z6c",
            "STRIPE_PRICE_MCP_OVERAGE": OVERAGE_PRICE, "STRIPE_METER_EVENT_NAME": METER_EVENT_NAME,
            "PYTHONPATH": str(ROOT)}


async def server_bound(server: Server, db: Path, tokens: dict[str, list[str]], args: argparse.Namespace) -> None:
    configs = [(era, n) for era in (SESSION, STATELESS) for n in (8, 32) if args.only in f"{era}|{n}"]
    loads = {(config, kind): await Load.open(server, config[0], CHEAP, config[1], tokens[kind])
             for config in configs for kind in KINDS}
    await _drain(db)  # the warm-ups' events
    figures: dict[tuple[tuple[str, int], str], list[tuple[float, float]]] = {key: [] for key in loads}
    metered = estimated = 0
    drains: list[float] = []
    try:
        for r in range(args.rounds):  # each config's two kinds back to back, the order alternating by round
            for config in configs:
                for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                    rate, cpu = await loads[config, kind].measure(args.seconds)
                    figures[config, kind].append((rate, cpu))
                    count, seconds = await _drain(db)
                    if kind == "overage":
                        metered, estimated = metered + count, estimated + int(rate * args.seconds)
                        drains.append(seconds)
                    elif count:
                        raise RuntimeError(f"{count} calls within the quota were metered")
    finally:
        for load in loads.values():
            await load.close()
    print(f"1. server-bound: get_account_status through the raw keep-alive HTTP/1.1 client (bench/raw_http.py), "
          f"{args.rounds} rounds of {args.seconds:g} s per kind and config, the two kinds back to back in each "
          "round; ratios are the median of the rounds' paired ratios")
    print("  era        | conns | overage calls/s | within calls/s | ratio | overage CPU/call | within CPU/call "
          "| CPU ratio")
    for config in configs:
        over, within = figures[config, "overage"], figures[config, "within quota"]
        rate, cpu = (statistics.median(x[i] / y[i] for x, y in zip(over, within, strict=True)) for i in (0, 1))
        rates = [statistics.median(x[0] for x in kind) for kind in (over, within)]
        cpus = [statistics.median(x[1] for x in kind) * 1e6 for kind in (over, within)]
        print(f"  {config[0]} | {config[1]:5} | {rates[0]:15,.0f} | {rates[1]:14,.0f} | {rate:5.3f} | "
              f"{cpus[0]:13,.0f} us | {cpus[1]:12,.0f} us | {cpu:5.3f}")
    print(f"  (goal: ratio >= 0.95; {metered:,} meter events written in the overage rounds for ~{estimated:,} "
          f"overage calls; the sender delivered each round's events {statistics.median(drains):.1f} s after it "
          f"ended (median), between rounds: the events wait {METER_SETTLE_SECONDS} s before they are due)")


async def client_bound(server: Server, db: Path, tokens: dict[str, list[str]], args: argparse.Namespace) -> None:
    over, within = tokens["overage"][:args.sessions], tokens["within quota"][:args.sessions]
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    metered = 0
    await calls_per_second(server.url, over, 1.0)  # warm-up
    await calls_per_second(server.url, within, 1.0)
    drains = [(await _drain(db))[1]]
    for _ in range(args.sdk_rounds):  # interleaved, so drift hits both alike
        rate, count = await calls_per_second(server.url, over, args.sdk_seconds)
        rates["overage"].append(rate)
        metered += count
        drains.append((await _drain(db))[1])  # the sender's delivery, timed apart from both rounds
        rates["within quota"].append((await calls_per_second(server.url, within, args.sdk_seconds))[0])
    o, w = statistics.median(rates["overage"]), statistics.median(rates["within quota"])
    paired = statistics.median(a / b for a, b in zip(rates["overage"], rates["within quota"], strict=True))
    print(f"2. client-bound: the official MCP client, {args.sessions} sessions, {args.sdk_rounds} x "
          f"{args.sdk_seconds:g} s, rounds interleaved (the client process saturates a core before the server):")
    print(f"   overage {o:,.1f} calls/s (runs {', '.join(f'{r:,.1f}' for r in rates['overage'])}; {metered:,} "
          f"metered in them) vs. within quota {w:,.1f} calls/s (runs "
          f"{', '.join(f'{r:,.1f}' for r in rates['within quota'])})")
    print(f"   ratio {o / w:.3f} (medians), {paired:.3f} (median of the rounds' ratios); the sender finished each "
          f"round's events {statistics.median(drains):.1f} s after it ended (median)")


async def _drain(db: Path) -> tuple[int, float]:
    """(meter events pending now, seconds until the sender has delivered them all), read from the server's file."""
    started, first = time.perf_counter(), None
    while True:
        with sqlite3.connect(db) as conn:
            ((pending,),) = conn.execute("SELECT COUNT(*) FROM meter_events WHERE status = 'pending'").fetchall()
        first = pending if first is None else first
        if not pending:
            return first, time.perf_counter() - started
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"{pending} meter events still pending after 300 s")
        await asyncio.sleep(0.1)
async def _sent(db: Path) -> int:
    store = await SQLiteStore.open(db)
    try:
        return (await store.meter_event_counts())["sent"]
    finally:
        await store.close()


async def sender_rate(tmp: Path, events: int) -> None:
    fake, fake_url = start_fake([])
    store = await SQLiteStore.open(tmp / "sender.db")
    now = int(time.time())
    try:
        async with store.webhook_transaction(now) as tx:
            user_id = await tx.ensure_stripe_customer(SEEDED_CUSTOMER, email="x@example.com", name=None,
                                                      event_created=1)
            await tx.write_subscription("sub_sender", user_id, SubscriptionState("team", "active", None, False, 1))
        async with store.transaction() as db:
            for i in range(events):
                await db.execute("INSERT INTO meter_events (identifier, subscription_id, occurred_at, next_attempt_at)"
                                 " VALUES (?, 'sub_sender', ?, ?)", (f"call_bench_{i:06d}", now, now))
        config = BillingConfig("http://127.0.0.1", stripe_secret_key=KEY, overage_price=OVERAGE_PRICE,
                               meter_event_name=METER_EVENT_NAME, meter_events_per_second=1000)
        async with StripeGateway(KEY, fake_url) as gateway:
            sender = MeterEventSender(store, lambda: gateway, config)
            started = time.perf_counter()
            delivered = 0
            while delivered < events:
                handled = await sender.send_due()
                if handled == 0:
                    raise RuntimeError("the sender stopped delivering")
                delivered += handled
            elapsed = time.perf_counter() - started
        counts = await store.meter_event_counts()
    finally:
        await store.close()
        stop(fake)
    print(f"3. meter events delivered by the sender to the fake Stripe over HTTP: {events:,} in {elapsed:.2f} s = "
          f"{events / elapsed:,.0f} events/s (paced at <= 1,000/s; the fake validates each against the SDK's "
          f"types); stored as sent: {counts['sent']:,}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    # Rounds shorter than the events' settle delay: no event falls due during a round, so a round times
    # the per-call path alone; the delivery (and the fake Stripe's own work) runs between rounds, timed.
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", default="", help="server-bound configs containing this text, e.g. '2025-11-25|8'")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--sdk-seconds", type=float, default=4)
    parser.add_argument("--sdk-rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--skip-sender", action="store_true")
    args = parser.parse_args()
    if max(args.seconds, args.sdk_seconds) >= METER_SETTLE_SECONDS:
        parser.error(f"rounds must be shorter than the events' settle delay ({METER_SETTLE_SECONDS} s)")
    print(f"machine: {os.cpu_count()} cores ({os.getloadavg()[0]:.1f} load when started), Python "
          f"{sys.version.split()[0]}; server, load client, fake Stripe and store share the machine")
    with tempfile.TemporaryDirectory() as tmp:
        db, tokens, customers = await setup(Path(tmp))
        fake, fake_url = start_fake(customers)
        port = free_port()
        server = Server("kamiyo", [sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port)], port)
        try:
            server.start(server_env(Path(tmp), db, fake_url, port))
            await server_bound(server, db, tokens, args)
            if not args.skip_sdk:
                await client_bound(server, db, tokens, args)
            print(f"   meter events sent to Stripe in all: {await _sent(db):,} (the warm-ups' included)")
        finally:
            server.stop()
            stop(fake)
        if not args.skip_sender:
            await sender_rate(Path(tmp), args.events)


if __name__ == "__main__":
    asyncio.run(main())
