"""Reading a JSON-RPC POST body ahead of the MCP transport, and handing it on untouched.

The bearer layer needs to know whether a request calls a tool (to decide and count it in the
same store trip that authenticates it). The body is buffered (up to the transport's own size
limit), parsed once, and replayed to the transport, which reads it as if nothing had happened.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import Message, Receive

JSONRPCId = str | int | None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A `tools/call` request: the tool's name and its raw arguments."""

    name: str
    arguments: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RPCRequest:
    """A single JSON-RPC request object (not a batch, not a response)."""

    id: JSONRPCId
    method: str
    params: dict[str, Any] | None

    def tool_call(self) -> ToolCall | None:
        """The tool call this request makes, if it is a well-formed `tools/call`."""
        if self.method != "tools/call" or self.params is None:
            return None
        name, arguments = self.params.get("name"), self.params.get("arguments")
        if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
            return None
        return ToolCall(name, arguments)


async def read_body(receive: Receive, limit: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> tuple[bytes | None, Receive]:
    """The request body (None when it is larger than `limit` or the client went away), and a `receive`
    that replays everything read so far before reading on."""
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            body = None
            break
        size += len(message.get("body", b""))
        if size > limit:
            body = None
            break
        if not message.get("more_body", False):
            body = b"".join(m.get("body", b"") for m in read)
            read = [{"type": "http.request", "body": body, "more_body": False}]
            break
    queued = deque(read)

    async def replay() -> Message:
        return queued.popleft() if queued else await receive()

    return body, replay


def parse_request(body: bytes) -> RPCRequest | None:
    """The JSON-RPC request in `body`, or None for anything else (batch, notification, response, bad JSON)."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0" or "id" not in decoded:
        return None
    method, params, request_id = decoded.get("method"), decoded.get("params"), decoded.get("id")
    if not isinstance(method, str) or not (params is None or isinstance(params, dict)):
        return None
    if not (request_id is None or isinstance(request_id, str | int)) or isinstance(request_id, bool):
        return None
    return RPCRequest(request_id, method, params)
