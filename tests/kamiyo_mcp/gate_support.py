"""In-process servers behind the gate, on a clock the test moves, with a probe inside the gate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp import Client
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp_types import CallToolRequestParams, Tool

from billing.access import Denial
from billing.subscription_state import SubscriptionState
from kamiyo_mcp.caller import Caller
from kamiyo_mcp.catalog import CatalogedServer
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from tests.support import mint_token

T0 = 1_899_999_990  # 30 s into a minute
HINT = "no token here: the gate refused this call"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Probe(Extension):
    """Runs inside the gate, right before the tool: it sees exactly the calls the gate let through."""

    identifier = "test.kamiyo/probe"

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        self.reached.append(params.name)
        return await call_next(ctx)


@dataclass
class Gated:
    runtime: Runtime
    server: CatalogedServer
    clock: Clock
    probe: Probe
    caller: list[Caller | Denial | None] = field(default_factory=lambda: [None])

    def calls_as(self, token: str) -> Caller:
        """Make every call of the server carry `token`, verified now (as the bearer layer or stdio would)."""
        caller = Caller(self.runtime.authority.verify(token))
        self.caller[0] = caller
        return caller


@asynccontextmanager
async def gated(settings: Settings) -> AsyncIterator[tuple[Gated, Client]]:
    clock = Clock()
    runtime = Runtime(settings, clock=clock)
    probe = Probe()
    holder: list[Caller | Denial | None] = [None]
    server = build_server(runtime, lambda ctx: holder[0], missing_token_hint=HINT, inner_extensions=[probe])
    async with runtime.opened():
        async with Client(server, mode="legacy") as client:
            yield Gated(runtime, server, clock, probe, holder), client


async def stripe_subscription(runtime: Runtime, tier: str, status: str, *, period_end: int | None = None,
                              cancel_at_period_end: bool = False) -> str:
    """A token of a Stripe subscription in `status`, written the way a webhook writes it."""
    now = runtime.authority.now()
    subscription_id = "sub_" + uuid.uuid4().hex[:14]
    async with runtime.store.webhook_transaction(now) as tx:
        user_id = await tx.ensure_stripe_customer("cus_" + uuid.uuid4().hex[:14], name=None, event_created=now,
                                                  email=f"{subscription_id}@example.com")
        await tx.write_subscription(subscription_id, user_id,
                                    SubscriptionState(tier, status, period_end, cancel_at_period_end, now))
    return await mint_token(runtime, user_id, subscription_id, tier)


def arguments_for(tool: Tool) -> dict[str, Any]:
    """Arguments the tool's input model accepts: a string for each required parameter."""
    return {name: "0x" + "1" * 40 if name == "address" else "x" for name in tool.input_schema.get("required", [])}
