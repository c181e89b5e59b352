"""Every tool the server lists runs behind the one authorization gate, and only admitted calls reach it."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from mcp import Client

from billing.store.records import AuditEntry
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from tests.kamiyo_mcp.gate_support import HINT, Gated, arguments_for, gated, stripe_subscription
from tests.support_mcp import text_of


async def test_every_listed_tool_is_refused_without_a_token(settings: Settings) -> None:
    server = build_server(Runtime(settings), lambda ctx: None, missing_token_hint=HINT)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 5
        for tool in tools:
            result = await client.call_tool(tool.name, arguments_for(tool))
            assert result.is_error and HINT in text_of(result), tool.name


async def test_an_unknown_tool_is_answered_by_the_sdk_without_touching_the_store(settings: Settings) -> None:
    server = build_server(Runtime(settings), lambda ctx: None, missing_token_hint=HINT)
    async with Client(server) as client:
        result = await client.call_tool("no_such_tool", {})
    assert result.is_error and "Unknown tool" in text_of(result)


async def test_a_call_whose_arguments_are_refused_spends_no_quota(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        gate.calls_as((await gate.runtime.authority.issue_grant("args@example.com", "personal")).token)
        bad = await client.call_tool("search_crypto_exploits", {"limit": "many"})
        assert bad.is_error and "validation error" in text_of(bad)
        status = await client.call_tool("get_account_status", {})
    assert status.structured_content is not None
    assert status.structured_content["usage"]["calls_this_minute"] == 1


# ---- every listed tool x every kind of denial: refused, and the tool body never runs -------------

async def revoked(gate: Gated) -> str:
    issued = await gate.runtime.authority.issue_grant("revoked@example.com", "enterprise")
    await gate.runtime.authority.revoke(issued.token_id, reason="abuse")
    return issued.token


async def subscription_ended(gate: Gated) -> str:
    return await stripe_subscription(gate.runtime, "enterprise", "canceled")


async def subscription_ended_at_period_end(gate: Gated) -> str:
    now = gate.runtime.authority.now()
    return await stripe_subscription(gate.runtime, "enterprise", "active", period_end=now - 1,
                                     cancel_at_period_end=True)


async def grant_expired(gate: Gated) -> str:
    return (await gate.runtime.authority.issue_grant("expired@example.com", "enterprise", days=1)).token


async def use(gate: Gated, token: str, calls: int) -> None:
    await asyncio.gather(*(gate.runtime.authority.authorize(token, "get_account_status") for _ in range(calls)))


async def minute_quota_used(gate: Gated) -> str:
    token = (await gate.runtime.authority.issue_grant("minute@example.com", "team")).token
    await use(gate, token, 120)
    return token


async def day_quota_used(gate: Gated) -> str:
    token = (await gate.runtime.authority.issue_grant("day@example.com", "team")).token
    start = gate.clock.now
    for minute in range(84):  # 84 minutes of 120 calls: more than the day's 10,000
        gate.clock.now = start + 60 * minute
        await use(gate, token, 120)
    return token


async def revoked_for_the_subscription(gate: Gated) -> str:
    issued = await gate.runtime.authority.issue_grant("ended@example.com", "enterprise")
    async with gate.runtime.store.webhook_transaction(gate.runtime.authority.now()) as tx:
        await tx.revoke_subscription_tokens(issued.subscription_id, "subscription_ended")
        await tx.audit("test", "subscription.deleted", issued.subscription_id)
    return issued.token


DENIALS: dict[str, tuple[Callable[[Gated], Awaitable[str]], str, float]] = {
    # kind: (make a token, the refusal's code, seconds the clock moves after the caller verified it)
    "revoked": (revoked, "token_revoked", 0),
    "subscription_deleted": (revoked_for_the_subscription, "subscription_ended", 0),
    "subscription_canceled": (subscription_ended, "subscription_ended", 0),
    "cancelled_period_over": (subscription_ended_at_period_end, "subscription_ended", 0),
    "grant_expired": (grant_expired, "token_expired", 86_400),
    "minute_quota": (minute_quota_used, "rate_limited", 0),
    "day_quota": (day_quota_used, "daily_quota_exhausted", 0),
}


@pytest.mark.parametrize("kind", DENIALS)
async def test_every_tool_refuses_each_kind_of_denial_without_running(settings: Settings, kind: str) -> None:
    make, code, later = DENIALS[kind]
    async with gated(settings) as (gate, client):
        tools = (await client.list_tools()).tools
        gate.calls_as(await make(gate))
        gate.clock.now += later
        for tool in tools:
            result = await client.call_tool(tool.name, arguments_for(tool))
            assert result.is_error, (kind, tool.name)
            assert result.meta is not None and result.meta["ai.kamiyo/denial"]["code"] == code, (kind, tool.name)
        assert gate.probe.reached == [], kind


async def test_a_tool_above_the_tier_is_refused_without_running(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        gate.calls_as((await gate.runtime.authority.issue_grant("low@example.com", "personal")).token)
        refused = await client.call_tool("monitor_wallet", {"address": "0x" + "1" * 40})
        assert refused.is_error and "team tier" in text_of(refused) and gate.probe.reached == []
        assert refused.meta is not None and refused.meta["ai.kamiyo/denial"]["tier_needed"] == "team"
        admitted = await client.call_tool("get_account_status", {})
    assert not admitted.is_error and gate.probe.reached == ["get_account_status"]


async def test_a_rate_limited_refusal_says_when_to_retry(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        token = (await gate.runtime.authority.issue_grant("retry@example.com", "personal")).token
        await use(gate, token, 30)
        gate.calls_as(token)
        refused = await client.call_tool("get_account_status", {})
    assert refused.meta is not None
    assert refused.meta["ai.kamiyo/denial"] == {"code": "rate_limited", "retry_after": 30}


async def test_the_probe_sees_every_admitted_call(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        tools = (await client.list_tools()).tools
        issued = await gate.runtime.authority.issue_grant("all@example.com", "enterprise")
        gate.calls_as(issued.token)
        for tool in tools:
            await client.call_tool(tool.name, arguments_for(tool))
        assert sorted(gate.probe.reached) == sorted(tool.name for tool in tools)
        await gate.runtime.store.revoke_token(issued.token_id, "x", now=gate.runtime.authority.now(),
                                              audit=AuditEntry("test", "token.revoke", issued.token_id))
        assert (await client.call_tool("get_account_status", {})).is_error
    assert len(gate.probe.reached) == len(tools)
