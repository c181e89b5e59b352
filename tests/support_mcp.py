"""Connecting the official MCP client to a running server with a bearer token."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def mcp_session(base_url: str, token: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(base_url + "/mcp", http_client=http), mode="legacy") as client:
            yield client


def text_of(result: object) -> str:
    return " ".join(getattr(part, "text", "") for part in getattr(result, "content", []))


async def start_of_a_fresh_minute_window() -> None:
    """Wait for the next minute if this one ends within 8 s: a burst of calls then meets one quota window."""
    remaining = 60 - time.time() % 60
    if remaining < 8:
        with anyio.fail_after(10):
            await anyio.sleep(remaining + 0.05)


async def account_calls(*sessions: tuple[Client, int], refusal: str, tool: str = "get_account_status",
                        arguments: dict[str, Any] | None = None) -> list[bool]:
    """Call `tool` (by default `get_account_status`) n times through each session concurrently; True per
    call admitted.

    Every refused call must say `refusal`.
    """
    outcomes: list[bool] = []

    async def call(client: Client, n: int) -> None:
        for _ in range(n):
            result = await client.call_tool(tool, arguments or {})
            outcomes.append(not result.is_error)
            if result.is_error:
                assert refusal in text_of(result), text_of(result)

    async with anyio.create_task_group() as group:
        for client, n in sessions:
            group.start_soon(call, client, n)
    return outcomes
