"""Reading a JSON request body with a size limit, refusing in the one error shape.

    body = await read_json_object(request)       # dict, or raises BodyError
    except BodyError as exc: return exc.response()
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from billing.errors import InvalidRequestError
from billing.http.errors import error_response

MAX_JSON_BODY_BYTES = 64 * 1024


class BodyError(InvalidRequestError):
    """The body cannot be used; `status` is 400, 413 or 415."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message)


async def read_json_object(request: Request, *, limit: int = MAX_JSON_BODY_BYTES,
                           allow_empty: bool = False) -> dict[str, Any]:
    """The request's body as a JSON object (`{}` for an empty body when `allow_empty`).

    Raises:
        BodyError: over `limit` bytes (413), not JSON (415 for another content type, else 400),
            or not an object (400).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise BodyError(415, "unsupported_media_type", f"send the body as application/json (got {media_type})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyError(400, "invalid_body", "the request body was not received completely") from None
    raw = b"".join(chunks)
    if not raw.strip() and allow_empty:
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise BodyError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BodyError(400, "invalid_body", "the request body must be a JSON object")
    return value


def _too_large(limit: int) -> BodyError:
    return BodyError(413, "payload_too_large", f"the request body is over {limit // 1024} KiB")
