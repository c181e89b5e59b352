"""`kamiyo-mcp oauth clients|grants|revoke`: the operator's view of apps connected by OAuth.

A grant is one customer's consent to one app, paid for by one subscription; revoking it ends its
refresh tokens and access tokens on their next use, in every process on the store.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TextIO

from billing.store.records import AuditEntry
from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    oauth = commands.add_parser("oauth", help="list OAuth clients and grants, revoke a grant",
                                description="The apps customers connected by signing in (OAuth): the clients, "
                                            "the grants they were given, and revocation.")
    actions = oauth.add_subparsers(dest="oauth_command", metavar="ACTION", required=True)
    clients = actions.add_parser("clients", help="apps that registered or were seen by their metadata document",
                                 description="List OAuth clients: registered dynamically (RFC 7591) or known by "
                                             "their Client ID Metadata Document, with their grants.")
    clients.add_argument("--json", action="store_true", help="one JSON array on stdout")
    clients.set_defaults(handler=run(_clients))
    grants = actions.add_parser("grants", help="consents given to apps (never a token)",
                                description="List grants: which customer allowed which app, on which "
                                            "subscription and tier, when it last refreshed, and whether it lives. "
                                            "Tokens are never stored, so never shown.")
    grants.add_argument("--email", type=arguments.email, help="only this customer's grants")
    grants.add_argument("--json", action="store_true", help="one JSON array on stdout")
    grants.set_defaults(handler=run(_grants))
    revoke = actions.add_parser("revoke", help="end a grant: its app's tokens are refused from their next use",
                                description="Revoke a grant (by its id, from `oauth grants`): its refresh tokens "
                                            "and access tokens are refused from their next use, by every server "
                                            "process on the store. The app must ask the customer to sign in again.")
    revoke.add_argument("grant_id")
    revoke.add_argument("--reason", default="revoked by operator", type=arguments.text)
    revoke.set_defaults(handler=run(_revoke))


async def _clients(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = await runtime.store.list_oauth_clients(now=runtime.authority.now())
    records = [{"client_id": r.client_id, "name": r.client_name, "kind": r.kind, "registered": iso(r.created_at),
                "grants": r.grants, "live_grants": r.live_grants} for r in rows]
    return _show(records, ("client_id", "name", "kind", "registered", "live_grants"), args.json, out, err,
                 empty="no OAuth clients")


async def _grants(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = await runtime.store.list_oauth_grants(args.email, now=runtime.authority.now())
    records = [{
        "grant_id": r.grant_id, "client": r.client_name or r.client_id, "client_id": r.client_id, "email": r.email,
        "tier": r.tier, "subscription_id": r.subscription_id, "subscription_status": r.subscription_status,
        "status": "revoked" if r.revoked_at is not None else "active", "revoked_reason": r.revoked_reason,
        "created": iso(r.created_at), "last_refresh": iso(r.refreshed_at), "live_access_tokens": r.live_access_tokens,
    } for r in rows]
    return _show(records, ("grant_id", "client", "email", "tier", "status", "created", "last_refresh"), args.json,
                 out, err, empty="no OAuth grants")


async def _revoke(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    changed = await runtime.store.revoke_oauth_grant(
        args.grant_id, args.reason, now=runtime.authority.now(),
        audit=AuditEntry("cli", "oauth.revoke", args.grant_id, args.reason))
    print(f"revoked {args.grant_id}: its app's tokens are refused from their next use" if changed
          else f"{args.grant_id} was already revoked", file=err)
    return 0


def _show(records: Sequence[Mapping[str, object]], columns: Sequence[str], as_json: bool, out: TextIO, err: TextIO, *,
          empty: str) -> int:
    if as_json:
        json.dump(records, out, indent=2)
        out.write("\n")
        return 0
    if not records:
        print(empty, file=err)
        return 0
    widths = {c: max(len(c), *(len(str(r[c])) for r in records)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns), file=out)
    for record in records:
        print("  ".join(str(record[c]).ljust(widths[c]) for c in columns), file=out)
    return 0
