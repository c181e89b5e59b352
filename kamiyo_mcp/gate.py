"""The one authorization path for every tool call.

An MCP extension that wraps `tools/call`: it finds the caller's token (the bearer header over
HTTP, `KAMIYO_TOKEN` over stdio), asks the authority, and either refuses the call with a tool
error that says why and what to do, or runs the tool with the grant in a context variable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp_types import CallToolRequestParams, CallToolResult, TextContent

from billing.access import Denial, Grant
from billing.authority import Authority
from billing.errors import StoreError
from kamiyo_mcp.http.bearer import parse_bearer

logger = logging.getLogger(__name__)

TokenSource = Callable[[ServerRequestContext[Any, Any]], str | None]
ToolCallObserver = Callable[[str, str, str], None]  # (tool, tier or "none", "granted" or the denial code)


@dataclass(frozen=True, slots=True)
class AuthorizedCall:
    grant: Grant
    token: str = field(repr=False)


_call: ContextVar[AuthorizedCall | None] = ContextVar("kamiyo_call", default=None)


def current_call() -> AuthorizedCall:
    """The authorized call being served (its grant and token).

    Raises:
        RuntimeError: called outside an authorized tool call (a wiring bug, never user input).
    """
    call = _call.get()
    if call is None:
        raise RuntimeError("tool called without authorization")
    return call


def bearer_from_request(ctx: ServerRequestContext[Any, Any]) -> str | None:
    request = ctx.request
    return None if request is None else parse_bearer(request.headers.get("authorization"))


def refusal(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class AuthorizationGate(Extension):
    identifier = "ai.kamiyo/authorization"

    def __init__(self, authority: Callable[[], Authority], token_source: TokenSource,
                 known_tools: Callable[[], set[str]], *, missing_token_hint: str,
                 on_call: ToolCallObserver | None = None) -> None:
        self._authority = authority
        self._token_source = token_source
        self._known_tools = known_tools
        self._missing_token_hint = missing_token_hint
        self._on_call = on_call or (lambda tool, tier, outcome: None)

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        if params.name not in self._known_tools():
            return await call_next(ctx)  # the SDK answers "Unknown tool" without spending quota
        token = self._token_source(ctx)
        if not token:
            self._on_call(params.name, "none", "missing_token")
            return refusal(self._missing_token_hint)
        try:
            decision = await self._authority().authorize(token, params.name)
        except StoreError:
            # Fail closed, and say so: no call runs without a decision from the store.
            logger.exception("tool %s: the store could not decide", params.name)
            self._on_call(params.name, "none", "store_unavailable")
            return refusal("The account service is unavailable right now, so this call was not run. "
                           "Please retry in a few seconds.")
        if isinstance(decision, Denial):
            self._on_call(params.name, "none", decision.code)
            logger.info("tool %s refused: %s", params.name, decision.code)
            return refusal(decision.message)
        self._on_call(params.name, decision.tier.name, "granted")
        reset = _call.set(AuthorizedCall(decision, token))
        try:
            return await call_next(ctx)
        finally:
            _call.reset(reset)
