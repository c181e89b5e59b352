"""Routes whose every answer but success is the one JSON error shape.

    json_route("/api/billing/x", handler, {"POST"})     # handler(request) -> Response

A handler refuses by raising: `Refusal` (any status), `InvalidRequestError` (400; `BodyError`
keeps its 413/415), `StripeGatewayError` (502 with Stripe's message and request id) or
`StoreError` (503). A wrong method gets 405 with `Allow`; anything else is logged and answered
500 without a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from billing.errors import InvalidRequestError, StoreError
from billing.http.body import BodyError
from billing.http.errors import error_body, error_response
from billing.stripe_gateway import StripeGatewayError

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


class Refusal(Exception):
    """An answer in the error shape, raised from inside a handler; `extra` adds top-level fields."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
        self.extra = dict(extra or {})

    def response(self) -> Response:
        body = {**error_body(self.status, self.code, self.message), **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def json_route(path: str, handler: Handler, methods: Collection[str]) -> Route:
    """A route for `handler` whose every refusal, a wrong method included, is the one JSON error shape."""
    route = Route(path, _Endpoint(path, handler, methods))
    # A `{x:path}` parameter is `.*`, which stops at a newline: an id holding %0A would miss the
    # route and reach the app's catch-all mount (a plain-text 404) instead of the handler's 400.
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def stripe_failure(exc: StripeGatewayError) -> Response:
    """502: Stripe refused the call (its message and request id) or could not be reached."""
    message = exc.message if exc.http_status is None else f"Stripe refused the request: {exc.message}"
    return error_response(502, "stripe_error", message, stripe_request_id=exc.request_id, stripe_code=exc.code,
                          stripe_status=exc.http_status)


class _Endpoint:
    """An ASGI endpoint for every HTTP method: the allowed ones reach the handler, others get 405.

    A plain function endpoint would make Starlette match only its methods and let a catch-all
    mount answer the others with a plain-text 404.
    """

    def __init__(self, path: str, handler: Handler, methods: Collection[str]) -> None:
        self._path = path
        self._handler = handler
        self._methods = frozenset(methods)
        self._allow = ", ".join(sorted(self._methods))
        self._app = request_response(self._answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        if request.method not in self._methods:
            return error_response(405, "method_not_allowed", f"{request.method} is not allowed here; use {self._allow}",
                                  headers={"Allow": self._allow})
        try:
            return await self._handler(request)
        except Refusal as refusal:
            return refusal.response()
        except BodyError as exc:
            return exc.response()
        except InvalidRequestError as exc:
            return error_response(400, exc.code, exc.message)
        except StripeGatewayError as exc:
            return stripe_failure(exc)
        except StoreError:
            logger.exception("billing: the store failed on %s %s", request.method, self._path)
            return error_response(503, "store_unavailable", "the billing database is unavailable; retry shortly",
                                  headers={"Retry-After": "5"})
        except Exception:  # the top of a request: logged and answered, never a stack trace
            logger.exception("billing: unexpected error on %s %s", request.method, self._path)
            return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
