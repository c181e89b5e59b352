"""A raw keep-alive HTTP/1.1 MCP client for the core benchmarks: cheap enough that the server is the bottleneck.

Requests are the exact bytes the official client sends (captured from mcp 2.3.0's streamable-HTTP
client): `tools/call` in a 2025-11-25 session (`Mcp-Session-Id`, answered as a one-message SSE
stream) or as a 2026-07-28 stateless request (`_meta` envelope, `Mcp-Method`/`Mcp-Name` headers,
answered as JSON). A connection sends one request at a time and reads the whole response
(Content-Length or chunked) before the next: what a keep-alive client does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

SESSION = "2025-11-25"
STATELESS = "2026-07-28"
CLIENT_INFO = {"name": "mcp", "version": "0.1.0"}


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int) -> None:
        self._reader = reader
        self._writer = writer
        self._address = (host, port)
        self.host = f"{host}:{port}"

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host, port)

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass

    async def _reopen(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(*self._address)

    async def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send one request; its status, headers (lower-case names) and whole body.

        A connection the server closed while it sat idle (its keep-alive timeout) is reopened, as a
        client does; sessions are named by their header, not by the connection.
        """
        if self._reader.at_eof():
            await self._reopen()
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError):
            await self._reopen()  # closed as the request was sent: nothing of it was read
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding") == b"chunked":
            body = bytearray()
            while True:
                size = int((await self._reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")
                    break
                body += (await self._reader.readexactly(size + 2))[:-2]
            return status, headers, bytes(body)
        length = int(headers.get(b"content-length", b"0"))
        return status, headers, await self._reader.readexactly(length) if length else b""


def post(host: str, token: str, body: dict[str, object], extra: dict[str, str]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Host": host, "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json", **extra, "Content-Length": str(len(payload))}
    return ("POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() \
        + payload


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: dict[str, object]


async def open_session(conn: Connection, token: str) -> str:
    """Initialize a 2025-11-25 session on `conn` for `token`; its id."""
    status, headers, _ = await conn.exchange(post(conn.host, token, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": SESSION, "capabilities": {}, "clientInfo": CLIENT_INFO}}, {}))
    if status != 200:
        raise RuntimeError(f"initialize answered {status}")
    session = headers[b"mcp-session-id"].decode()
    status, _, _ = await conn.exchange(post(conn.host, token, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                                            {"Mcp-Session-Id": session, "Mcp-Protocol-Version": SESSION}))
    if status != 202:
        raise RuntimeError(f"notifications/initialized answered {status}")
    return session


def session_calls(host: str, sessions: list[tuple[str, str]], call: Call) -> Iterator[bytes]:
    """`tools/call` requests rotating over (token, session id) pairs, ids counting up."""
    for request_id, (token, session) in enumerate(itertools.cycle(sessions), start=2):
        yield post(host, token, {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                                 "params": {"name": call.tool, "arguments": call.arguments}},
                   {"Mcp-Session-Id": session, "Mcp-Protocol-Version": SESSION})


def stateless_calls(host: str, tokens: list[str], call: Call) -> Iterator[bytes]:
    """2026-07-28 `tools/call` requests rotating over `tokens`."""
    meta = {"io.modelcontextprotocol/protocolVersion": STATELESS, "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
            "io.modelcontextprotocol/clientCapabilities": {}}
    for request_id, token in enumerate(itertools.cycle(tokens), start=1):
        yield post(host, token, {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                                 "params": {"name": call.tool, "arguments": call.arguments, "_meta": meta}},
                   {"Mcp-Protocol-Version": STATELESS, "Mcp-Method": "tools/call", "Mcp-Name": call.tool})


async def drive(conn: Connection, requests: Iterator[bytes], stop: float) -> int:
    """Send `requests` until the loop's clock reaches `stop`; the number answered with a tool result.

    Raises:
        RuntimeError: a call was refused or failed (a benchmark of errors measures nothing).
    """
    loop = asyncio.get_running_loop()
    done = 0
    while loop.time() < stop:
        status, _, body = await conn.exchange(next(requests))
        if status != 200 or b'"isError":true' in body or b'"result"' not in body:
            raise RuntimeError(f"call failed ({status}): {body[:300]!r}")
        done += 1
    return done
