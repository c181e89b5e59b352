"""Bearer authentication in front of the MCP endpoint (MCP authorization spec, RFC 6750/9728).

A missing, malformed, forged, expired, unknown or rotated-away token is answered 401 with a
`WWW-Authenticate` header pointing at the protected-resource metadata; the body names the reason
and never echoes the token. A token that authenticates but is no longer entitled passes: its
tool calls are refused by the gate with a message the user can act on.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from billing.errors import InvalidTokenError, StoreError
from billing.http.bearer_header import parse_bearer
from kamiyo_mcp.runtime import Runtime

logger = logging.getLogger(__name__)


class BearerAuth:
    def __init__(self, app: ASGIApp, runtime: Runtime, *, path: str, resource_metadata_url: str) -> None:
        self.app = app
        self.runtime = runtime
        self.path = path.rstrip("/")
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        token = parse_bearer(header)
        if token is None:
            description = (
                "the Authorization header is not 'Bearer <token>'" if header else "a bearer token is required"
            )
            await self._unauthorized(send, description, with_error=bool(header))
            return
        try:
            await self.runtime.authority.authenticate(token)
        except InvalidTokenError as exc:
            await self._unauthorized(send, exc.reason, with_error=True)
            return
        except StoreError:
            logger.exception("store unavailable while authenticating")
            await _send_json(send, 503, {"error": "temporarily_unavailable",
                                         "error_description": "the account store is unavailable; retry shortly"},
                             [(b"retry-after", b"5")])
            return
        await self.app(scope, receive, send)

    async def _unauthorized(self, send: Send, description: str, *, with_error: bool) -> None:
        params = []
        if with_error:
            params.append(f'error="invalid_token", error_description="{description}"')
        params.append(f'resource_metadata="{self.resource_metadata_url}"')
        challenge = "Bearer " + ", ".join(params)
        await _send_json(send, 401, {"error": "invalid_token", "error_description": description},
                         [(b"www-authenticate", challenge.encode())])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": payload})
