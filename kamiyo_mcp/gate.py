"""The one authorization path for every tool call.

An MCP extension that wraps `tools/call`: it finds the caller (handed down by the HTTP bearer layer,
or the stdio process's), takes the decision already made for this call or asks the authority once,
and either refuses the call with a tool error that says why and what to do, or runs the tool with
the grant in a context variable. Only calls that reach their tool are counted: arguments the tool's
input model rejects get the SDK's validation error and spend nothing.

A tier or quota refusal carries a one-time upgrade link (`UpgradeOffers`: as a URL elicitation to
clients that take one, else in the text), and a call whose upgrade lands while it waits runs at the
new tier. A metered call (overage, past the daily quota) that fails inside its tool is not billed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, CallToolResult, TextContent

from billing.access import Denial, Grant
from billing.authority import Authority
from billing.errors import StoreError
from kamiyo_mcp.caller import Caller, caller_in
from kamiyo_mcp.catalog import ToolCatalog
from kamiyo_mcp.upgrade_prompt import UpgradeOffers

logger = logging.getLogger(__name__)

DENIAL_META_KEY = "ai.kamiyo/denial"
REFUSED = -32001  # the JSON-RPC error code of a refused request (as the bearer layer answers one)

CallerSource = Callable[[ServerRequestContext[Any, Any]], Caller | Denial | None]
ToolCallObserver = Callable[[str, str, str], None]  # (tool, tier or "none", "granted" or the denial code)


@dataclass(frozen=True, slots=True)
class AuthorizedCall:
    grant: Grant


_call: ContextVar[AuthorizedCall | None] = ContextVar("kamiyo_call", default=None)


def current_call() -> AuthorizedCall:
    """The authorized call being served (its grant: tier, counts, account state).

    Raises:
        RuntimeError: called outside an authorized tool call (a wiring bug, never user input).
    """
    call = _call.get()
    if call is None:
        raise RuntimeError("tool called without authorization")
    return call


@contextmanager
def running_with(grant: Grant) -> Iterator[None]:
    """Make `grant` the current call's grant for the block (what the gate does around an admitted call)."""
    reset = _call.set(AuthorizedCall(grant))
    try:
        yield
    finally:
        _call.reset(reset)


def current_grant() -> Grant:
    """The grant of the tool call being served (`current_call().grant`)."""
    return current_call().grant


def caller_from_request(ctx: ServerRequestContext[Any, Any]) -> Caller | None:
    """The caller the HTTP bearer layer put into the request's scope (None without a request)."""
    request = ctx.request
    return None if request is None else caller_in(request.scope)


def denial_details(denial: Denial) -> dict[str, object]:
    """What a program needs of a refusal: its code, and when to retry or which tier is needed."""
    details: dict[str, object] = {"code": str(denial.code)}
    if denial.retry_after is not None:
        details["retry_after"] = denial.retry_after
    if denial.tier_needed is not None:
        details["tier_needed"] = denial.tier_needed
    return details


def refusal(text: str, denial: Denial | None = None) -> CallToolResult:
    meta = None if denial is None else {DENIAL_META_KEY: denial_details(denial)}
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)


class AuthorizationGate(Extension):
    identifier = "ai.kamiyo/authorization"

    def __init__(self, authority: Callable[[], Authority], caller: CallerSource, catalog: ToolCatalog, *,
                 missing_token_hint: str, on_call: ToolCallObserver | None = None,
                 upgrades: UpgradeOffers | None = None) -> None:
        self._authority = authority
        self._caller = caller
        self._catalog = catalog
        self._missing_token_hint = missing_token_hint
        self._on_call = on_call or (lambda tool, tier, outcome: None)
        self._upgrades = upgrades

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        name = params.name
        if name not in self._catalog:
            return await call_next(ctx)  # the SDK answers "Unknown tool" without spending quota
        caller = self._caller(ctx)
        if caller is None:
            self._on_call(name, "none", "missing_token")
            return refusal(self._missing_token_hint)
        if isinstance(caller, Denial):
            return self._refuse(name, caller)
        decision = caller.pending.take(name) if caller.pending is not None else None
        if decision is None:
            if not self._catalog.accepts(name, params.arguments):
                return await call_next(ctx)  # the SDK's validation error; nothing is counted
            try:
                decision = await self._authority().admit(caller.credential, name,
                                                         with_account=self._catalog.shows_account(name))
            except StoreError:
                # Fail closed, and say so: no call runs without a decision from the store.
                logger.exception("tool %s: the store could not decide", name)
                self._on_call(name, "none", "store_unavailable")
                return refusal("The account service is unavailable right now, so this call was not run. "
                               "Please retry in a few seconds.")
        if isinstance(decision, Denial):
            if self._upgrades is None or (not self._upgrades.may_offer(decision) and params.request_state is None):
                return self._refuse(name, decision)
            credential = caller.credential
            answer = await self._upgrades.answer(ctx, params, decision,
                                                 readmit=lambda: self._authority().admit(
                                                     credential, name, with_account=self._catalog.shows_account(name)),
                                                 refuse=lambda text, denial: self._refuse(name, denial, text))
            if not isinstance(answer, Grant):
                return answer
            decision = answer
        self._on_call(name, decision.tier.name, "granted")
        with running_with(decision):
            if not decision.metered:
                return await call_next(ctx)
            return await self._metered(decision, ctx, call_next)

    async def _metered(self, grant: Grant, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Run an overage call; if it fails inside its tool it is not billed."""
        try:
            result = await call_next(ctx)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._void(grant)
            raise
        if _failed(result):
            await self._void(grant)
        return result

    async def _void(self, grant: Grant) -> None:
        try:
            await self._authority().void(grant)
        except StoreError:
            logger.exception("call %s failed in its tool but could not be voided; it will be billed", grant.call_id)

    def _refuse(self, name: str, denial: Denial, text: str | None = None) -> CallToolResult:
        self._on_call(name, "none", str(denial.code))
        logger.info("tool %s refused for subscription %s: %s", name, denial.subscription_id or "-", denial.code)
        return refusal(denial.message if text is None else text, denial)

    async def admit_message(self, name: str, ctx: ServerRequestContext[Any, Any]) -> Grant:
        """The grant for a request that counts as a call of tool `name` (a resource read, a prompt).

        Raises:
            MCPError: refused (code -32001, the bearer layer's refusal shape, with the reason in `data`).
        """
        caller = self._caller(ctx)
        if caller is None:
            self._on_call(name, "none", "missing_token")
            raise MCPError(code=REFUSED, message=self._missing_token_hint, data={"reason": "missing_token"})
        try:
            decision = caller if isinstance(caller, Denial) else await self._authority().admit(
                caller.credential, name, with_account=self._catalog.shows_account(name))
        except StoreError:
            logger.exception("%s: the store could not decide", name)
            self._on_call(name, "none", "store_unavailable")
            raise MCPError(code=REFUSED, message="The account service is unavailable right now; please retry in a "
                           "few seconds.", data={"reason": "store_unavailable"}) from None
        if isinstance(decision, Denial):
            self._refuse(name, decision)
            raise MCPError(code=REFUSED, message=decision.message,
                           data={"reason": str(decision.code), **denial_details(decision)})
        self._on_call(name, decision.tier.name, "granted")
        return decision


# A resource read or a prompt's name and arguments → the tool it counts as (None: not gated, not counted).
CountsAs = Callable[[str, dict[str, Any]], str | None]


class MessageGate:
    """`resources/read` and `prompts/get` behind the same gate and quota as tool calls (a server middleware).

    Each gated request counts as one call of the tool `counts_as` names; a request for an unknown
    resource or prompt, or one missing its required arguments, passes through uncounted and the SDK
    answers its error.
    """

    METHODS = ("resources/read", "prompts/get")

    def __init__(self, gate: AuthorizationGate, counts_as: CountsAs) -> None:
        self._gate = gate
        self._counts_as = counts_as

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None or ctx.method not in self.METHODS:
            return await call_next(ctx)
        tool = self._counts_as(ctx.method, dict(ctx.params or {}))
        if tool is None:
            return await call_next(ctx)
        with running_with(await self._gate.admit_message(tool, ctx)):
            return await call_next(ctx)


def _failed(result: HandlerResult) -> bool:
    """Whether a tool's result is an error (the tool failed, or refused its input)."""
    if isinstance(result, CallToolResult):
        return result.is_error
    return isinstance(result, dict) and bool(result.get("isError") or result.get("is_error"))
