"""`kamiyo-mcp connect URL`: a stdio ↔ streamable-HTTP bridge to a hosted KAMIYO server.

For clients that only start local commands (Claude Desktop's config file): the client speaks MCP
on this process's stdin/stdout, and every message is relayed as is to the server's /mcp. The
server sees the bearer token from `KAMIYO_TOKEN`, or, without one, an OAuth access token: the
first run opens the sign-in page in the browser (and prints its address), later runs reuse the
cached tokens and refresh them (see connect_auth.py). Nothing but the protocol goes to stdout.
"""

from __future__ import annotations

import logging
import sys
import webbrowser
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from kamiyo_mcp.connect_auth import LoopbackCallback, TokenFile, client_metadata

logger = logging.getLogger(__name__)


class ConnectError(Exception):
    """A bad URL or an unusable server; the message is one line for the person."""


def mcp_url(raw: str) -> str:
    """The server's MCP endpoint: the URL as given, or its /mcp when only the site is named.

    Raises:
        ConnectError: not an http(s) URL, or plain http to a host other than this computer.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"not a server URL: {raw!r} (expected https://host/mcp)")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConnectError("use https: tokens must not cross the network in the clear")
    path = parts.path if parts.path not in ("", "/") else "/mcp"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


async def run_connect(url: str, *, token: str | None, open_browser: bool = True) -> None:
    """Relay stdin/stdout to `url` until stdin closes."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(_http_client(url, token, open_browser, stack))
        async with stdio_server() as (local_read, local_write), \
                streamable_http_client(url, http_client=http) as (remote_read, remote_write):
            async with anyio.create_task_group() as group:
                async def to_server() -> None:
                    await _pump(local_read, remote_write, "client")
                    group.cancel_scope.cancel()  # stdin closed: the client is gone

                group.start_soon(to_server)
                group.start_soon(_pump, remote_read, local_write, "server")


@asynccontextmanager
async def _http_client(url: str, token: str | None, open_browser: bool,
                       stack: AsyncExitStack) -> AsyncIterator[httpx2.AsyncClient]:
    if token:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
            yield http
        return
    callback = await stack.enter_async_context(LoopbackCallback.listening())
    storage = TokenFile.for_server(url)

    async def show(authorization_url: str) -> None:
        print(f"kamiyo-mcp connect: sign in to KAMIYO in your browser:\n{authorization_url}", file=sys.stderr,
              flush=True)
        if open_browser:
            webbrowser.open(authorization_url)

    provider = OAuthClientProvider(url, client_metadata(callback.redirect_uri), storage, redirect_handler=show,
                                   callback_handler=callback.wait)
    async with create_mcp_http_client(auth=provider) as http:
        if await storage.get_tokens() is None:
            # Sign in before relaying, so the client's first request does not wait on a person.
            await http.get(url, headers={"Accept": "text/event-stream"})
            print(f"kamiyo-mcp connect: signed in; tokens cached in {storage.path}", file=sys.stderr, flush=True)
        yield http


async def _pump(source: ReadStream[SessionMessage | Exception], sink: WriteStream[SessionMessage], side: str) -> None:
    async for message in source:
        if isinstance(message, Exception):
            logger.warning("connect: an unreadable message from the %s was dropped: %s", side, message)
            continue
        await sink.send(message)


async def sign_out(url: str) -> str:
    """Revoke the cached sign-in at the server (RFC 7009) and delete the cache; returns what happened."""
    storage = TokenFile.for_server(url)
    tokens, client = await storage.get_tokens(), await storage.get_client_info()
    if tokens is None or client is None:
        return "not signed in: nothing to forget"
    parts = urlsplit(url)
    revoked = False
    async with create_mcp_http_client() as http:
        try:
            meta = await http.get(f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server")
            endpoint = meta.json().get("revocation_endpoint") if meta.status_code == 200 else None
            if endpoint and (tokens.refresh_token or tokens.access_token):
                answer = await http.post(endpoint, data={"token": tokens.refresh_token or tokens.access_token,
                                                         "client_id": client.client_id})
                revoked = answer.status_code == 200
        except (httpx2.HTTPError, ValueError):
            logger.warning("connect: the server could not be told; the local sign-in is forgotten anyway")
    storage.forget()
    return "signed out: the server revoked the sign-in and the local cache is deleted" if revoked else \
        "the local cache is deleted (the server could not be reached to revoke the sign-in)"
