"""The one JSON error shape of every sidecar endpoint:

    {"error": {"code": "invalid_tier", "message": "...", "status": 400}, ...extra}

`message` is written for the person reading it and never holds a secret or a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse


def error_body(status: int, code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status}, **extra}


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                   **extra: object) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, **extra), status_code=status, headers=headers)
