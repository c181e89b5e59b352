"""The paste-ready Claude Desktop config has the shapes of the repository's example."""

from __future__ import annotations

import json

from billing.claude_config import claude_desktop_config
from tests.support import REPO


def test_the_config_has_the_example_shapes_with_the_token_and_the_public_url() -> None:
    example = json.loads((REPO / "claude_desktop_config.example.json").read_text())["mcpServers"]
    config = claude_desktop_config("tok.en.value", public_url="https://mcp.kamiyo.ai/")

    servers = config["mcpServers"]
    assert isinstance(servers, dict)
    assert servers["kamiyo-remote"]["args"] == example["kamiyo-remote"]["args"]
    assert servers["kamiyo-remote"]["env"] == {"AUTH_HEADER": "Bearer tok.en.value"}
    assert servers["kamiyo"]["args"] == example["kamiyo-local"]["args"] == ["stdio"]
    assert servers["kamiyo"]["env"] == {"KAMIYO_TOKEN": "tok.en.value"}
    assert example["kamiyo"] == {"command": "uvx", "args": ["kamiyo-mcp", "connect", "https://mcp.kamiyo.ai/mcp"]}
    assert json.loads(json.dumps(config)) == config


def test_plain_http_off_loopback_gets_allow_http_and_loopback_does_not() -> None:
    remote = claude_desktop_config("t", public_url="http://mcp.internal:8000")["mcpServers"]["kamiyo-remote"]  # type: ignore[index]
    local = claude_desktop_config("t", public_url="http://127.0.0.1:8000")["mcpServers"]["kamiyo-remote"]  # type: ignore[index]
    assert remote["args"][-1] == "--allow-http" and "http://mcp.internal:8000/mcp" in remote["args"]
    assert "--allow-http" not in local["args"]
