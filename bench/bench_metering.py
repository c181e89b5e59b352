"""Metering figures, measured side by side in one run (printed, never asserted):

1. tool calls per second over streamable HTTP against one `kamiyo-mcp serve`, overage calls (every
   call past the daily quota: metered, its meter event written in the deciding trip and on disk
   before the call runs) vs. calls within the quota of the same tier, rounds interleaved (goal:
   overage ÷ within quota >= 0.95). Rounds are shorter than the events' settle delay, so the sender's
   deliveries (and the fake Stripe's work, on this same machine) fall between rounds, timed apart;
2. meter events delivered per second by the sender to the fake Stripe over HTTP (its pace set to
   Stripe's live-mode limit, 1,000/s).

The fake Stripe runs in a process of its own (bench/fake_stripe.py).

    python bench/bench_metering.py [--seconds 4] [--sessions 8] [--rounds 7] [--events 3000]
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

import httpx  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

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


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


async def overage_ratio(tmp: Path, args: argparse.Namespace) -> None:
    db, tiers = tmp / "bench.db", tmp / "tiers.toml"
    tiers.write_text(TIERS)
    customers = [f"cus_bench_{name}_{i}" for name in ("over", "within") for i in range(args.sessions)]
    fake, fake_url = start_fake(customers)
    store = await SQLiteStore.open(db)
    try:
        over = await subscribers(store, "over", args.sessions, past_quota=True)
        within = await subscribers(store, "within", args.sessions, past_quota=False)
    finally:
        await store.close()
    port = 20000 + os.getpid() % 20000
    env = {**os.environ, "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": SECRET, "KAMIYO_LOG_LEVEL": "WARNING",
           "KAMIYO_INTEL_SOURCES": "", "KAMIYO_PUBLIC_URL": f"http://127.0.0.1:{port}", "KAMIYO_TIERS_FILE": str(tiers),
           "KAMIYO_RECONCILE_INTERVAL": "0", "STRIPE_SECRET_KEY": KEY, "STRIPE_API_BASE": fake_url,
           "STRIPE_PRICE_MCP_TEAM": "price_1PgafmB7WZ01zgkW02Hf9z6c", "STRIPE_PRICE_MCP_OVERAGE": OVERAGE_PRICE,
           "STRIPE_METER_EVENT_NAME": METER_EVENT_NAME}
    process = serve(env, port)
    url = f"http://127.0.0.1:{port}"
    rates: dict[str, list[float]] = {"overage": [], "within quota": []}
    metered = 0
    try:
        await calls_per_second(url, over, 1.0)  # warm-up
        await calls_per_second(url, within, 1.0)
        drains: list[float] = []
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            rate, count = await calls_per_second(url, over, args.seconds)
            rates["overage"].append(rate)
            metered += count
            # The sender delivers the round's events in the background; let it finish (timed, not
            # counted in either round) so its work does not land in the next round.
            drains.append(await _drain(db))
            rates["within quota"].append((await calls_per_second(url, within, args.seconds))[0])
        sent = await _sent(db)
    finally:
        stop(process)
        stop(fake)
    o, w = statistics.median(rates["overage"]), statistics.median(rates["within quota"])
    print(f"1. tool calls over streamable HTTP, {args.sessions} sessions, median of {args.rounds} x "
          f"{args.seconds:g} s, rounds interleaved:")
    runs = ", ".join(f"{r:,.1f}" for r in rates["overage"])
    print(f"   overage {o:,.1f} calls/s (runs {runs}; {metered:,} metered in them)"
          f" vs. within quota {w:,.1f} calls/s (runs {', '.join(f'{r:,.1f}' for r in rates['within quota'])})")
    paired = statistics.median(a / b for a, b in zip(rates["overage"], rates["within quota"], strict=True))
    print(f"   ratio {o / w:.3f} (medians), {paired:.3f} (median of the rounds' ratios) (goal >= 0.95)")
    print(f"   meter events sent to Stripe: {sent:,} (the warm-up's included), the sender finishing each "
          f"round's events {statistics.median(drains):.1f} s after it ended (median; the events wait "
          f"{METER_SETTLE_SECONDS} s before they are due)")


async def _drain(db: Path) -> float:
    """Seconds until no meter event is left to send (read from the server's database file)."""
    started = time.perf_counter()
    while True:
        with sqlite3.connect(db) as conn:
            ((pending,),) = conn.execute("SELECT COUNT(*) FROM meter_events WHERE status = 'pending'").fetchall()
        if not pending:
            return time.perf_counter() - started
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
    print(f"2. meter events delivered by the sender to the fake Stripe over HTTP: {events:,} in {elapsed:.2f} s = "
          f"{events / elapsed:,.0f} events/s (paced at <= 1,000/s; the fake validates each against the SDK's "
          f"types); stored as sent: {counts['sent']:,}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    # Shorter than the events' settle delay: no event falls due during a round, so a round times the
    # per-call path alone; the delivery (and the fake Stripe's own work) runs between rounds, timed.
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        await overage_ratio(Path(tmp), args)
        await sender_rate(Path(tmp), args.events)


if __name__ == "__main__":
    asyncio.run(main())
