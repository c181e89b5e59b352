"""get_account_status's typed answer holds every field the authority reports, for every kind of account."""

from __future__ import annotations

import pytest

from kamiyo_mcp.settings import Settings
from tests.kamiyo_mcp.gate_support import gated, stripe_subscription
from tests.support_mcp import text_of


@pytest.mark.parametrize("tier", ["personal", "team", "enterprise"])
@pytest.mark.parametrize("kind", ["operator_grant", "stripe"])
async def test_every_account_kind_and_tier_answers_a_valid_typed_status(settings: Settings, tier: str,
                                                                        kind: str) -> None:
    async with gated(settings) as (gate, client):
        if kind == "stripe":
            token = await stripe_subscription(gate.runtime, tier, "active", period_end=int(gate.clock.now) + 86_400)
        else:
            token = (await gate.runtime.authority.issue_grant(f"{tier}@example.com", tier)).token
        gate.calls_as(token)
        result = await client.call_tool("get_account_status", {})
    assert not result.is_error, text_of(result)  # a field the model lacks would fail its validation
    status = result.structured_content
    assert status is not None and status["tier"] == tier and status["subscription"]["kind"] == kind
    assert status["usage"]["calls_this_minute"] == 1
