"""`kamiyo-mcp token issue|list|revoke|rotate|tier`: the operator's hands on access tokens.

A token is printed on stdout once, when it is minted; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from billing.authority import MAX_TOKEN_DAYS
from billing.tiers import TIER_NAMES
from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="issue, list, revoke, rotate or re-tier access tokens",
                                description="Issue, list, revoke, rotate or re-tier access tokens. A token is "
                                            "printed on stdout once, when it is minted; details go to stderr.")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    issue = token_commands.add_parser("issue", help="grant a tier to an email and print its token (shown once)",
                                      description="Grant a tier to an email (an operator grant) and print its token "
                                                  "on stdout; this is the only time it is shown.")
    issue.add_argument("--email", required=True, type=arguments.email)
    issue.add_argument("--tier", required=True, choices=TIER_NAMES)
    issue.add_argument("--days", type=arguments.days,
                       help=f"validity in days, 1-{MAX_TOKEN_DAYS} (default MCP_TOKEN_EXPIRY_DAYS)")
    issue.set_defaults(handler=run(_token_issue))
    listing = token_commands.add_parser("list", help="list tokens (never the token itself)",
                                        description="List tokens: id, email, tier, status, created, expires. "
                                                    "The token itself is never stored, so never shown.")
    listing.add_argument("--email", type=arguments.email, help="only this customer's tokens")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    listing.set_defaults(handler=run(_token_list))
    revoke = token_commands.add_parser("revoke", help="revoke a token; its next call is refused",
                                       description="Revoke a token (by its id, from `token list`); its next call "
                                                   "is refused, by every server process on the store.")
    revoke.add_argument("token_id")
    revoke.add_argument("--reason", default="revoked by operator", type=arguments.text)
    revoke.set_defaults(handler=run(_token_revoke))
    rotate = token_commands.add_parser("rotate", help="replace a token by a new one and print it",
                                       description="Replace a token by a new one for the same entitlement and "
                                                   "print it; the old one is refused from now on.")
    rotate.add_argument("token_id")
    rotate.set_defaults(handler=run(_token_rotate))
    tier = token_commands.add_parser("tier", help="change the tier of an operator grant",
                                     description="Change the tier of the operator grant behind a token; in force "
                                                 "from its next call. Stripe subscriptions change tier in Stripe.")
    tier.add_argument("token_id")
    tier.add_argument("tier", choices=TIER_NAMES)
    tier.set_defaults(handler=run(_token_tier))


async def _token_issue(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    issued = await runtime.authority.issue_grant(args.email, args.tier, days=args.days, actor="cli")
    print(issued.token, file=out)
    print(f"issued {issued.token_id} ({issued.tier}) for {args.email}, expires "
          f"{iso(issued.expires_at)}; this is the only time the token is shown", file=err)
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
            "created": iso(row.created_at),
            "expires": iso(row.expires_at),
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
    print(f"rotated {args.token_id} -> {issued.token_id} (expires {iso(issued.expires_at)}, as before); "
          "the old token is refused from now on", file=err)
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


