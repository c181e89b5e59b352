"""The paste-ready `claude_desktop_config.json` for a token. Pure, no I/O.

Two entries, the shapes of `claude_desktop_config.example.json`: `kamiyo` runs a local
`kamiyo-mcp stdio` (the command must be the absolute path of the user's install), `kamiyo-remote`
reaches this server's `/mcp` through mcp-remote with the token in an environment variable.
"""

from __future__ import annotations

from urllib.parse import urlsplit

MCP_REMOTE = "mcp-remote@0.15.1"
STDIO_COMMAND = "kamiyo-mcp"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def claude_desktop_config(token: str, *, public_url: str) -> dict[str, object]:
    """A complete `claude_desktop_config.json` object holding `token`."""
    mcp_url = public_url.rstrip("/") + "/mcp"
    args = ["-y", MCP_REMOTE, mcp_url, "--header", "Authorization:${AUTH_HEADER}", "--transport", "http-only"]
    parts = urlsplit(mcp_url)
    if parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK:
        args.append("--allow-http")  # mcp-remote refuses plain http off loopback otherwise
    return {
        "mcpServers": {
            "kamiyo": {
                "command": STDIO_COMMAND,
                "args": ["stdio"],
                "env": {"KAMIYO_TOKEN": token},
            },
            "kamiyo-remote": {
                "command": "npx",
                "args": args,
                "env": {"AUTH_HEADER": f"Bearer {token}"},
            },
        }
    }
