"""The menu prompts through the real server and the official client: listed, filled with live answers."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import GetPromptResult, TextContent

from tests.support import ServerProcess
from tests.support_mcp import mcp_session

COFFEE = "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"


def _text(prompt: GetPromptResult) -> str:
    content = prompt.messages[0].content
    assert isinstance(content, TextContent)
    return content.text


async def test_two_prompts_are_on_the_menu_with_titles_and_arguments(intel_server: ServerProcess,
                                                                    tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["personal"]) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert prompts["due_diligence_on_protocol"].title == "Due diligence on a protocol"
    assert prompts["screen_wallet_before_interacting"].title == "Screen a wallet before interacting"
    required = {name: [a.name for a in p.arguments or [] if a.required] for name, p in prompts.items()}
    assert required == {"due_diligence_on_protocol": ["protocol"], "screen_wallet_before_interacting": ["address"]}


@pytest.mark.parametrize(("tier", "detail_shown"), [("personal", False), ("enterprise", True)])
async def test_due_diligence_carries_the_risk_answer_for_the_callers_tier(
    intel_server: ServerProcess, tier_tokens: dict[str, str], tier: str, detail_shown: bool
) -> None:
    async with mcp_session(intel_server.url, tier_tokens[tier]) as client:
        prompt = await client.get_prompt("due_diligence_on_protocol", {"protocol": "Curve DEX"})
    text = _text(prompt)
    assert prompt.messages[0].role == "user"
    assert "Curve DEX: risk " in text and "Counted: every incident of Curve DEX" in text
    assert "search_crypto_exploits" in text and "recommendation" in text
    assert ("defillama:2022-08-09:curve-dex" in text) is detail_shown  # incidents listed from team up
    assert ("Factors:" in text) is detail_shown
    assert "Data as of 20" in text


async def test_screening_a_wallet_carries_the_verdict_and_its_sources(intel_server: ServerProcess,
                                                                      tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        prompt = await client.get_prompt("screen_wallet_before_interacting", {"address": COFFEE})
    text = _text(prompt)
    assert "Known whitehat MEV operator (c0ffeebabe.eth)" in text and "BlueberryProtocol_exp.sol" in text
    assert "Data as of 20" in text
    assert "approvals" in text


async def test_a_bad_argument_is_a_clear_error(intel_server: ServerProcess, tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("screen_wallet_before_interacting", {"address": "0x1234"})
    assert "address: '0x1234' is not a valid Ethereum address" in caught.value.error.message
