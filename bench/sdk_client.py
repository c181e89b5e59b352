"""Tool calls per second through the official MCP client (streamable HTTP, 2025-11-25 sessions).

The SDK client spends more CPU per call than either server, so this figure is client-bound: it
shows what one client process gets, not what the server can do (see raw_http.py for that).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def sdk_calls_per_second(url: str, tokens: list[str], sessions: int, seconds: float) -> float:
    calls = 0
    rotation = itertools.cycle(tokens)

    async def session(token: str, stop: float) -> None:
        nonlocal calls
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            async with Client(streamable_http_client(url + "/mcp", http_client=http), mode="legacy") as client:
                await client.call_tool("get_account_status", {})  # warm-up, not counted
                while time.perf_counter() < stop:
                    result = await client.call_tool("get_account_status", {})
                    if result.is_error:
                        raise RuntimeError(f"tool call refused during the benchmark: {result.content}")
                    calls += 1

    stop = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(*(session(next(rotation), stop) for _ in range(sessions)))
    return calls / (time.perf_counter() - start)
