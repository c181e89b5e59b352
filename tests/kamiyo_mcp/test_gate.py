"""Every tool the server lists runs behind the one authorization gate."""

from mcp import Client

from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings
from tests.support_mcp import text_of

HINT = "no token here: the gate refused this call"


async def test_every_listed_tool_is_refused_without_a_token(settings: Settings) -> None:
    server = build_server(Runtime(settings), lambda ctx: None, missing_token_hint=HINT)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 5
        for tool in tools:
            arguments = {name: "x" for name in tool.input_schema.get("required", [])}
            result = await client.call_tool(tool.name, arguments)
            assert result.is_error and HINT in text_of(result), tool.name


async def test_an_unknown_tool_is_answered_by_the_sdk_without_touching_the_store(settings: Settings) -> None:
    server = build_server(Runtime(settings), lambda ctx: "some.token.value", missing_token_hint=HINT)
    async with Client(server) as client:
        result = await client.call_tool("no_such_tool", {})
    assert result.is_error and "Unknown tool" in text_of(result)
