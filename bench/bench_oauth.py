"""OAuth access tokens cost what bearer tokens cost: measured side by side in one run (printed, never asserted).

1. authorize() decisions per second in-process on SQLite, with OAuth access tokens vs. bearer tokens
   of the same subscriptions;
2. tool calls per second over streamable HTTP against one `kamiyo-mcp serve`, the official client
   sending OAuth access tokens vs. bearer tokens (goal: OAuth ÷ bearer >= 0.95), interleaved rounds.

Every access token is minted by the real flow (the provider's /authorize, a sign-in with the
subscription's own token, consent, code exchange), in-process on the benchmark's store.

    python bench/bench_oauth.py [--seconds 4] [--sessions 8] [--grants 400] [--rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
from bench_core import Server, free_port
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.provider import AuthorizationParams
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from billing.access import Grant
from billing.authority import Authority
from billing.config import OAuthConfig
from billing.oauth.metadata_doc import MetadataDocuments
from billing.oauth.provider import OAuthProvider
from billing.oauth.sign_in import SignIn
from billing.store import SQLiteStore
from billing.tokens import AUDIENCE, TokenCodec

SECRET = "bench-secret-" + "b" * 40
REDIRECT = "http://127.0.0.1:1/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def mint(db: Path, issuer: str, grants: int) -> tuple[list[str], list[str]]:
    """`grants` operator grants: their bearer tokens, and one OAuth access token each (the real flow)."""
    resource = issuer + "/mcp"
    store = await SQLiteStore.open(db)
    codec = TokenCodec(SECRET, audiences=(AUDIENCE, resource))
    authority = Authority(store, codec, public_url=issuer)
    provider = OAuthProvider(store, codec, issuer=issuer, resource=resource, config=OAuthConfig(),
                             documents=MetadataDocuments(), sign_in_url=issuer + "/oauth/sign-in")
    sign_in = SignIn(store, authority, provider, public_url=issuer, support_email="bench@example.com",
                     config=OAuthConfig())
    await provider.register_client(OAuthClientInformationFull(
        client_id="bench-client", redirect_uris=[AnyUrl(REDIRECT)], token_endpoint_auth_method="none"))
    client = await provider.get_client("bench-client")
    assert client is not None
    bearers, accesses = [], []
    for i in range(grants):
        bearer = (await authority.issue_grant(f"bench{i}@example.com", "enterprise")).token
        location = await provider.authorize(client, AuthorizationParams(
            state=None, scopes=["mcp"], code_challenge=CHALLENGE, redirect_uri=AnyUrl(REDIRECT),
            redirect_uri_provided_explicitly=True, resource=resource))
        request_id = location.split("request=")[1]
        await sign_in.use_secret(request_id, bearer, "bench-session")
        code = (await sign_in.approve(request_id, "bench-session")).split("code=")[1].split("&")[0]
        loaded = await provider.load_authorization_code(client, code)
        assert loaded is not None
        accesses.append((await provider.exchange_authorization_code(client, loaded)).access_token)
        bearers.append(bearer)
    await store.close()
    return bearers, accesses


async def decisions_per_second(db: Path, tokens: list[str], resource: str, decisions: int) -> float:
    store = await SQLiteStore.open(db)
    authority = Authority(store, TokenCodec(SECRET, audiences=(AUDIENCE, resource)), public_url="http://127.0.0.1")
    queue = iter(range(decisions))
    refused = 0

    async def worker() -> None:
        nonlocal refused
        for i in queue:
            if not isinstance(await authority.authorize(tokens[i % len(tokens)], "get_account_status"), Grant):
                refused += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(64)))
    elapsed = time.perf_counter() - began
    await store.close()
    if refused:
        raise RuntimeError(f"{refused} decisions were refusals during the benchmark")
    return decisions / elapsed


async def tool_calls_per_second(url: str, tokens: list[str], sessions: int, seconds: float,
                                subscriptions: Iterator[int], per_token: int = 200) -> float:
    """Tool calls/s through `sessions` concurrent MCP sessions; each session holds one token (a session
    belongs to its token's principal) for up to `per_token` calls, then the next subscription's token
    opens a new one (`subscriptions` goes on across runs), so that no subscription's quota (600/min) is
    what gets measured."""
    calls = 0
    stop = time.perf_counter() + seconds

    async def session() -> None:
        nonlocal calls
        while time.perf_counter() < stop:
            token = tokens[next(subscriptions)]
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                async with Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as client:
                    for _ in range(per_token):
                        if time.perf_counter() >= stop:
                            break
                        result = await client.call_tool("get_account_status", {})
                        if result.is_error:
                            raise RuntimeError(f"tool call refused during the benchmark: {result.content}")
                        calls += 1

    began = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    return calls / (time.perf_counter() - began)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--grants", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        bearers, accesses = await mint(db, url, 2 * args.grants)
        # Each phase has its own subscriptions, so one phase's calls never fill the other's quota windows;
        # within a phase a subscription's bearer and OAuth tokens share one quota, as they do in production.
        kinds = {"bearer": bearers[:args.grants], "oauth": accesses[:args.grants]}
        over_http_kinds = {"bearer": bearers[args.grants:], "oauth": accesses[args.grants:]}

        # Both kinds count on the same subscriptions: stay under 500 of their 600 calls a minute.
        decisions = min(args.decisions, args.grants * 500 // (2 * args.rounds))
        inprocess: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):
            for kind, tokens in kinds.items():
                inprocess[kind].append(await decisions_per_second(db, tokens, url + "/mcp", decisions))
        b, o = statistics.median(inprocess["bearer"]), statistics.median(inprocess["oauth"])
        print(f"authorize() in-process, {decisions:,} decisions a run: bearer {b:,.0f}/s, oauth {o:,.0f}/s, "
              f"ratio {o / b:.3f} (median of {args.rounds})")

        env = {**os.environ, "KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": SECRET, "KAMIYO_LOG_LEVEL": "WARNING",
               "KAMIYO_INTEL_SOURCES": "", "KAMIYO_PUBLIC_URL": url}
        server = Server("kamiyo", [sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port)], port)
        server.start(env)
        over_http: dict[str, list[float]] = {kind: [] for kind in kinds}
        subscriptions = itertools.cycle(range(args.grants))
        try:
            for tokens in over_http_kinds.values():
                await tool_calls_per_second(url, tokens, args.sessions, 1.0, subscriptions)  # warm-up, both kinds
            for round_ in range(args.rounds):  # interleaved, order alternating, so drift hits both alike
                order = list(over_http_kinds.items())
                for kind, tokens in order if round_ % 2 == 0 else order[::-1]:
                    rate = await tool_calls_per_second(url, tokens, args.sessions, args.seconds, subscriptions)
                    over_http[kind].append(rate)
        finally:
            server.stop()
        b, o = statistics.median(over_http["bearer"]), statistics.median(over_http["oauth"])
        paired = statistics.median(x / y for x, y in zip(over_http["oauth"], over_http["bearer"], strict=True))
        print(f"tool calls over streamable HTTP, {args.sessions} sessions, one server, {args.rounds} paired rounds "
              f"of {args.seconds:g} s: bearer {b:,.0f}/s, oauth {o:,.0f}/s; oauth/bearer {o / b:.3f} (medians), "
              f"{paired:.3f} (median of the rounds' ratios); goal >= 0.95")


if __name__ == "__main__":
    asyncio.run(main())
