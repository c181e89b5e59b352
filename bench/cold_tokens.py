"""Cold-token decisions against their floor, for `bench_core.py` (printed, never asserted).

A cold token is one the codec has not verified before: its decision pays the JWT verification.
The floor is what no implementation can avoid, in one loop with no event loop or thread between
the steps: `jwt.decode` + SHA-256 + one indexed SELECT of the token row (the issue's definition);
printed beside it, the same floor with our own HS256 verification (billing/jws.py) in place of
`jwt.decode`, so a decision is also compared with what our own code cannot avoid. Our decision is
`Authority.verify` (JWT once, SHA-256 once) + `Authority.admit` (the one store trip that admits and
counts the call, as for every tool but the account view), by one caller and by 64 concurrent
callers (as a server serves them), each token decided once, with `count` distinct tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import jwt

from billing.access import Grant
from billing.authority import Authority
from billing.jws import HS256Verifier
from billing.store import SQLiteStore
from billing.tokens import AUDIENCE, ISSUER, TokenCodec

REQUIRED = ["sub", "tier", "jti", "iat", "exp", "iss", "aud"]


async def issue(db: Path, secret: str, count: int) -> list[str]:
    store = await SQLiteStore.open(db)
    try:
        authority = Authority(store, TokenCodec(secret), public_url="http://127.0.0.1")
        return [(await authority.issue_grant(f"cold{i}@example.com", "enterprise")).token for i in range(count)]
    finally:
        await store.close()


def floor(db: Path, secret: str, tokens: list[str], *, ours: bool = False) -> float:
    """Seconds per decision of the floor: jwt.decode (or, `ours`, our own HS256 verification) + SHA-256 +
    one indexed SELECT, in one loop."""
    conn = sqlite3.connect(str(db))
    verifier = HS256Verifier(secret)
    try:
        start = time.perf_counter()
        for token in tokens:
            if ours:
                verifier.payload(token)
            else:
                jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                           options={"require": REQUIRED, "verify_exp": False})
            digest = hashlib.sha256(token.encode()).hexdigest()
            row = conn.execute("SELECT token_id, revoked_at, expires_at FROM tokens WHERE token_hash = ?",
                               (digest,)).fetchone()
            assert row is not None
        return (time.perf_counter() - start) / len(tokens)
    finally:
        conn.close()


async def decisions(db: Path, secret: str, tokens: list[str], callers: int, *, warm: bool = False) -> float:
    """Seconds per decision: verify + admit for each token once, by `callers` concurrent callers
    (a fresh codec: every token is cold, unless `warm`, which verifies them all first)."""
    store = await SQLiteStore.open(db)
    try:
        authority = Authority(store, TokenCodec(secret), public_url="http://127.0.0.1")
        if warm:
            for token in tokens:
                authority.verify(token)
        queue: Iterator[str] = iter(tokens)
        refused = 0

        async def caller() -> None:
            nonlocal refused
            for token in queue:
                decision = await authority.admit(authority.verify(token), "get_account_status")
                refused += not isinstance(decision, Grant)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - start
        if refused:
            raise RuntimeError(f"{refused} decisions were refusals")
        return elapsed / len(tokens)
    finally:
        await store.close()


async def run(workdir: Path, secret: str, count: int, rounds: int) -> None:
    db = workdir / "cold.db"
    started = time.perf_counter()
    tokens = await issue(db, secret, count)
    print(f"cold tokens: {count:,} distinct tokens (one enterprise grant each, set up in "
          f"{time.perf_counter() - started:.0f} s in {workdir})")
    figures: dict[str, list[float]] = {"floor": [], "our floor": [], "1 caller": [], "64 callers": [],
                                       "64 callers, warm": []}
    for _ in range(rounds):  # interleaved, so drift hits every figure alike
        figures["floor"].append(floor(db, secret, tokens))
        figures["our floor"].append(floor(db, secret, tokens, ours=True))
        figures["1 caller"].append(await decisions(db, secret, tokens, 1))
        figures["64 callers"].append(await decisions(db, secret, tokens, 64))
        figures["64 callers, warm"].append(await decisions(db, secret, tokens, 64, warm=True))
    base, own = statistics.median(figures["floor"]), statistics.median(figures["our floor"])
    print(f"  floor (jwt.decode + SHA-256 + one indexed SELECT, one loop): {base * 1e6:.1f} us/decision "
          f"= {1 / base:,.0f}/s (median of {rounds})")
    print(f"  the same with our HS256 verification (billing/jws.py) instead of jwt.decode: {own * 1e6:.1f} us "
          f"= {1 / own:,.0f}/s")
    for name in ("1 caller", "64 callers", "64 callers, warm"):
        cost = statistics.median(figures[name])
        label = "cold" if "warm" not in name else "warm (codec cache hit)"
        print(f"  {label} decision, {name.split(',')[0]}: {cost * 1e6:.1f} us = {1 / cost:,.0f}/s, "
              f"{cost / base:.2f}x the floor (goal for cold: <= 1.25x), {cost / own:.2f}x ours")
