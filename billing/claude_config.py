"""The paste-ready `claude_desktop_config.json` a customer gets with a token. Pure, no I/O.

One entry, `kamiyo`, that reaches this server's public `/mcp` URL through mcp-remote with the
token in an environment variable: a customer has no local install, so the config never names a
local `kamiyo-mcp` binary (a self-hosted stdio setup is in `claude_desktop_config.example.json`).
Every way a customer connects is built here, in `_entries`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MCP_REMOTE = "mcp-remote@0.15.1"
SERVER_NAME = "kamiyo"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def claude_desktop_config(token: str, *, public_url: str) -> dict[str, object]:
    """A complete `claude_desktop_config.json` object holding `token`."""
    return {"mcpServers": _entries(token, public_url.rstrip("/") + "/mcp")}


def _entries(token: str, mcp_url: str) -> dict[str, object]:
    return {SERVER_NAME: _mcp_remote(token, mcp_url)}


def _mcp_remote(token: str, mcp_url: str) -> dict[str, object]:
    """npx mcp-remote URL, sending `Authorization: Bearer <token>` from an env var (no spaces in args)."""
    args = ["-y", MCP_REMOTE, mcp_url, "--header", "Authorization:${AUTH_HEADER}", "--transport", "http-only"]
    parts = urlsplit(mcp_url)
    if parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK:
        args.append("--allow-http")  # mcp-remote refuses plain http off loopback otherwise
    return {"command": "npx", "args": args, "env": {"AUTH_HEADER": f"Bearer {token}"}}
