"""`kamiyo-mcp`: serve over HTTP or stdio, and the operator's commands.

The only module that reads argv and the environment. Exit codes: 0 ok, 1 the command failed,
2 bad usage or settings (one line naming the problem).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from dotenv import dotenv_values

from billing.errors import BillingError
from billing.tiers import TIER_NAMES
from kamiyo_mcp import __version__
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("kamiyo_mcp")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    env = read_environment()
    if args.command == "serve" and not env.get("KAMIYO_PUBLIC_URL", "").strip():
        # Unset public URL: advertise the address actually served (metadata, links in messages).
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        env["KAMIYO_PUBLIC_URL"] = f"http://{'[' + host + ']' if ':' in host else host}:{args.port}"
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"kamiyo-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return int(args.handler(settings, args) or 0)
    except SettingsError as exc:
        print(f"kamiyo-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def read_environment() -> dict[str, str]:
    """The process environment over an optional `.env` in the working directory."""
    env = {k: v for k, v in dotenv_values(".env").items() if v is not None} if os.path.exists(".env") else {}
    env.update(os.environ)
    return env


def configure_logging(level: str) -> None:
    # stderr only: in stdio mode stdout is the protocol stream.
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kamiyo-mcp", description="KAMIYO MCP server and operator tools.")
    parser.add_argument("--version", action="version", version=f"kamiyo-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve /mcp and the billing routes over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=_serve)

    stdio = commands.add_parser("stdio", help="serve the tools over stdio (Claude Desktop); token from KAMIYO_TOKEN")
    stdio.set_defaults(handler=_stdio)

    token = commands.add_parser("token", help="issue, list, revoke, rotate or re-tier access tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    issue = token_commands.add_parser("issue", help="grant a tier to an email and print its token (shown once)")
    issue.add_argument("--email", required=True)
    issue.add_argument("--tier", required=True, choices=TIER_NAMES)
    issue.add_argument("--days", type=int, help="validity in days (default MCP_TOKEN_EXPIRY_DAYS)")
    issue.set_defaults(handler=_run(_token_issue))
    listing = token_commands.add_parser("list", help="list tokens (never the token itself)")
    listing.add_argument("--email")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    listing.set_defaults(handler=_run(_token_list))
    revoke = token_commands.add_parser("revoke", help="revoke a token; its next call is refused")
    revoke.add_argument("token_id")
    revoke.add_argument("--reason", default="revoked by operator")
    revoke.set_defaults(handler=_run(_token_revoke))
    rotate = token_commands.add_parser("rotate", help="replace a token by a new one and print it")
    rotate.add_argument("token_id")
    rotate.set_defaults(handler=_run(_token_rotate))
    tier = token_commands.add_parser("tier", help="change the tier of an operator grant")
    tier.add_argument("token_id")
    tier.add_argument("tier", choices=TIER_NAMES)
    tier.set_defaults(handler=_run(_token_tier))
    return parser


# ---- servers -----------------------------------------------------------------------------------

def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from kamiyo_mcp.app import create_app

    if not 0 < args.port < 65536:
        print(f"kamiyo-mcp: --port must be 1..65535 (got {args.port})", file=sys.stderr)
        return 2
    app = create_app(settings, bind_host=args.host)
    logger.info("serving MCP at %s/mcp (bound to %s:%d), store %s", settings.public_url, args.host, args.port,
                settings.database_path)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(),
                access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    return 0


def _stdio(settings: Settings, args: argparse.Namespace) -> int:
    from kamiyo_mcp.stdio import run_stdio

    asyncio.run(run_stdio(settings))
    return 0


# ---- token commands ----------------------------------------------------------------------------

Command = Callable[[Runtime, argparse.Namespace, TextIO, TextIO], Awaitable[int]]


def _run(command: Command) -> Callable[[Settings, argparse.Namespace], int]:
    def handler(settings: Settings, args: argparse.Namespace) -> int:
        async def go() -> int:
            async with Runtime(settings).opened() as runtime:
                return await command(runtime, args, sys.stdout, sys.stderr)

        try:
            return asyncio.run(go())
        except BillingError as exc:
            print(f"kamiyo-mcp: {exc}", file=sys.stderr)
            return 1

    return handler


async def _token_issue(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    issued = await runtime.authority.issue_grant(args.email, args.tier, days=args.days, actor="cli")
    print(issued.token, file=out)
    print(f"issued {issued.token_id} ({issued.tier}) for {args.email.strip().lower()}, expires "
          f"{_iso(issued.expires_at)}; this is the only time the token is shown", file=err)
    return 0


async def _token_list(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = await runtime.authority.list_tokens(args.email)
    now = runtime.authority.now()
    records = [
        {
            "token_id": row.token_id,
            "email": row.email,
            "tier": row.tier,
            "status": _token_status(row.revoked_at, row.revoked_reason, row.expires_at, row.status, now),
            "subscription_id": row.subscription_id,
            "created": _iso(row.created_at),
            "expires": _iso(row.expires_at),
        }
        for row in rows
    ]
    if args.json:
        json.dump(records, out, indent=2)
        out.write("\n")
        return 0
    if not records:
        print("no tokens", file=err)
        return 0
    columns = ("token_id", "email", "tier", "status", "created", "expires")
    widths = {c: max(len(c), *(len(str(r[c])) for r in records)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns), file=out)
    for record in records:
        print("  ".join(str(record[c]).ljust(widths[c]) for c in columns), file=out)
    return 0


async def _token_revoke(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    changed = await runtime.authority.revoke(args.token_id, reason=args.reason, actor="cli")
    print(f"revoked {args.token_id}" if changed else f"{args.token_id} was already revoked", file=err)
    return 0


async def _token_rotate(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    issued = await runtime.authority.rotate(args.token_id, actor="cli")
    print(issued.token, file=out)
    print(f"rotated {args.token_id} -> {issued.token_id}; the old token is refused from now on", file=err)
    return 0


async def _token_tier(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    row = await runtime.authority.set_tier(args.token_id, args.tier, actor="cli")
    print(f"{row.token_id} is now {row.tier}; in force from its next call", file=err)
    return 0


def _token_status(revoked_at: int | None, reason: str | None, expires_at: int, status: str, now: int) -> str:
    if revoked_at is not None:
        return "rotated" if reason == "rotated" else "revoked"
    if expires_at <= now:
        return "expired"
    return "active" if status in ("active", "trialing") else status


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
