"""The paste-ready Claude Desktop config a customer gets: the public URL, never a local binary."""

from __future__ import annotations

import json

from billing.claude_config import MCP_REMOTE, claude_desktop_config
from tests.support import REPO


def entries(config: dict[str, object]) -> dict[str, dict[str, object]]:
    servers = config["mcpServers"]
    assert isinstance(servers, dict)
    return servers


def test_a_customer_config_reaches_the_public_url_and_runs_no_local_kamiyo_binary() -> None:
    config = claude_desktop_config("tok.en.value", public_url="https://mcp.kamiyo.ai/")

    servers = entries(config)
    assert servers, "at least one way in"
    for name, entry in servers.items():
        assert "kamiyo-mcp" not in str(entry["command"]), name  # no local install on a customer's machine
        assert "https://mcp.kamiyo.ai/mcp" in entry["args"], name  # type: ignore[operator]
    assert servers["kamiyo"] == {
        "command": "npx",
        "args": ["-y", MCP_REMOTE, "https://mcp.kamiyo.ai/mcp", "--header", "Authorization:${AUTH_HEADER}",
                 "--transport", "http-only"],
        "env": {"AUTH_HEADER": "Bearer tok.en.value"},
    }
    assert json.loads(json.dumps(config)) == config


def test_plain_http_off_loopback_gets_allow_http_and_loopback_does_not() -> None:
    remote = entries(claude_desktop_config("t", public_url="http://mcp.internal:8000"))["kamiyo"]
    local = entries(claude_desktop_config("t", public_url="http://127.0.0.1:8000"))["kamiyo"]
    assert remote["args"][-1] == "--allow-http" and "http://mcp.internal:8000/mcp" in remote["args"]  # type: ignore[index,operator]
    assert "--allow-http" not in local["args"]  # type: ignore[operator]


def test_the_self_hosting_example_shows_the_same_remote_entry() -> None:
    example = json.loads((REPO / "claude_desktop_config.example.json").read_text())["mcpServers"]["kamiyo-remote"]
    built = entries(claude_desktop_config("<your KAMIYO token>", public_url="https://mcp.kamiyo.ai"))["kamiyo"]
    assert example == built


def test_the_example_config_says_which_entry_is_for_customers_and_which_for_the_operator() -> None:
    example = json.loads((REPO / "claude_desktop_config.example.json").read_text())["mcpServers"]
    assert example["kamiyo"] == {"command": "uvx", "args": ["kamiyo-mcp", "connect", "https://mcp.kamiyo.ai/mcp"]}
    handed = entries(claude_desktop_config("<your KAMIYO token>", public_url="https://mcp.kamiyo.ai"))
    assert example["kamiyo-remote"] == handed["kamiyo"]  # what a customer is handed with a token
    assert example["kamiyo-local"]["args"] == ["stdio"] and "KAMIYO_TOKEN" in example["kamiyo-local"]["env"]
