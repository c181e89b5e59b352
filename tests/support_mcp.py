"""Connecting the official MCP client to a running server with a bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
