"""Incident resources and prompts run behind the same gate and quota as tool calls (`gate.MessageGate`)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from kamiyo_mcp.gate import REFUSED
from kamiyo_mcp.settings import Settings
from tests.kamiyo_mcp.gate_support import HINT, gated
from tests.kamiyo_mcp.test_gate import DENIALS

INCIDENT = "kamiyo://incidents/defillama:2022-03-23:ronin-bridge"
PROMPTS = {"due_diligence_on_protocol": {"protocol": "Curve"},
           "screen_wallet_before_interacting": {"address": "0x" + "1" * 40}}


async def _refusal(client: Client, kind: str, target: str) -> dict[str, Any]:
    with pytest.raises(MCPError) as caught:
        if kind == "resource":
            await client.read_resource(target)
        else:
            await client.get_prompt(target, PROMPTS[target])
    assert caught.value.error.code == REFUSED, caught.value.error
    return {"message": caught.value.error.message, **(caught.value.error.data or {})}


async def test_reading_an_incident_or_getting_a_prompt_without_a_token_is_refused(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        for kind, target in [("resource", INCIDENT), *(("prompt", name) for name in PROMPTS)]:
            refused = await _refusal(client, kind, target)
            assert refused["message"] == HINT and refused["reason"] == "missing_token"


@pytest.mark.parametrize("denial", DENIALS)
async def test_each_kind_of_denial_refuses_resources_and_prompts_before_they_run(settings: Settings,
                                                                                 denial: str) -> None:
    make, code, later = DENIALS[denial]
    async with gated(settings) as (gate, client):
        gate.calls_as(await make(gate))
        gate.clock.now += later
        # The intel store is empty: a body that ran would answer "no exploit data", not this refusal.
        for kind, target in [("resource", INCIDENT), *(("prompt", name) for name in PROMPTS)]:
            refused = await _refusal(client, kind, target)
            assert (refused["reason"], refused["code"]) == (code, code), (denial, target)


async def test_the_wallet_prompt_needs_the_tier_monitor_wallet_needs(settings: Settings) -> None:
    async with gated(settings) as (gate, client):
        gate.calls_as((await gate.runtime.authority.issue_grant("low@example.com", "personal")).token)
        refused = await _refusal(client, "prompt", "screen_wallet_before_interacting")
    assert refused["tier_needed"] == "team" and "team tier" in refused["message"]


async def test_incident_reads_and_prompts_count_against_the_quota_and_unknown_ones_do_not(
    settings: Settings,
) -> None:
    async with gated(settings) as (gate, client):
        gate.calls_as((await gate.runtime.authority.issue_grant("count@example.com", "team")).token)
        for attempt in (lambda: client.read_resource(INCIDENT),  # counted: reaches the store (empty)
                        lambda: client.get_prompt("due_diligence_on_protocol", {"protocol": "Curve"}),
                        lambda: client.get_prompt("no_such_prompt", {}),  # not counted: unknown
                        lambda: client.get_prompt("due_diligence_on_protocol", {}),  # not counted: no protocol
                        lambda: client.read_resource("kamiyo://elsewhere/1")):  # not counted: not an incident
            with pytest.raises(MCPError) as caught:
                await attempt()
            assert caught.value.error.code != REFUSED
        status = await client.call_tool("get_account_status", {})
    assert status.structured_content is not None
    assert status.structured_content["usage"]["calls_this_minute"] == 3
