"""Each incident as a resource (`kamiyo://incidents/{id}`), through the real server and the official client."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, TextResourceContents

from tests.support import ServerProcess
from tests.support_mcp import mcp_session


async def test_the_incident_template_is_listed(intel_server: ServerProcess, tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["personal"]) as client:
        templates = (await client.list_resource_templates()).resource_templates
    template = next(t for t in templates if t.uri_template == "kamiyo://incidents/{id}")
    assert template.mime_type == "application/json" and "get_exploit_details" in (template.description or "")


@pytest.mark.parametrize("ident", ["defillama:2023-03-13:euler-v1", "blocksec:65"])
async def test_an_incident_reads_as_the_details_answer(intel_server: ServerProcess, tier_tokens: dict[str, str],
                                                       ident: str) -> None:
    async with mcp_session(intel_server.url, tier_tokens["personal"]) as client:
        read = await client.read_resource(f"kamiyo://incidents/{ident}")
        details = await client.call_tool("get_exploit_details", {"exploit_id": ident})
    content = read.contents[0]
    assert isinstance(content, TextResourceContents) and content.mime_type == "application/json"
    assert json.loads(content.text) == details.structured_content
    assert json.loads(content.text)["incident"]["id"] == "defillama:2023-03-13:euler-v1"
    assert json.loads(content.text)["data_as_of"].endswith("Z")


async def test_an_unknown_incident_is_not_found_with_a_hint(intel_server: ServerProcess,
                                                            tier_tokens: dict[str, str]) -> None:
    async with mcp_session(intel_server.url, tier_tokens["personal"]) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("kamiyo://incidents/defillama:1999-01-01:nothing")
    assert caught.value.error.code == INVALID_PARAMS
    assert "no incident 'defillama:1999-01-01:nothing'" in caught.value.error.message
