"""`kamiyo-mcp outbox list [--json] [--pending]`: the mails the server has sent or still has to send.

Pending mails keep their bodies (they hold claim links: without SMTP an operator can forward them
from `--json`); sent mails keep only their headers.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    outbox = commands.add_parser("outbox", help="list the mails in the outbox",
                                 description="The mails the server has sent or still has to send.")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    listing = outbox_commands.add_parser("list", help="list mails, oldest first",
                                         description="List mails, oldest first. With --json, pending mails include "
                                                     "their bodies (they hold claim links: forward them when SMTP "
                                                     "is not set up); sent mails keep only their headers.")
    listing.add_argument("--pending", action="store_true", help="only mails not sent yet")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout, with the bodies")
    listing.set_defaults(handler=run(_outbox_list))


async def _outbox_list(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = await runtime.store.list_outbox(pending_only=args.pending)
    records: list[dict[str, object]] = []
    for row in rows:
        pending = row.status in ("pending", "retrying")
        record: dict[str, object] = {
            "id": row.id,
            "kind": row.kind,
            "status": row.status,
            "recipient": row.recipient,
            "subject": row.subject,
            "created": iso(row.created_at),
            "attempts": row.attempts,
            "next_attempt": iso(row.next_attempt_at) if pending else None,
            "sent": iso(row.sent_at),
            "last_error": row.last_error,
        }
        if args.json and pending:
            record |= {"body_text": row.body_text, "body_html": row.body_html}
        records.append(record)
    if args.json:
        json.dump(records, out, indent=2)
        out.write("\n")
        return 0
    if not records:
        print("the outbox is empty", file=err)
        return 0
    columns = ("id", "kind", "status", "recipient", "created", "attempts", "sent", "last_error")
    widths = {c: max(len(c), *(len(str(r[c] or "")) for r in records)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns), file=out)
    for record in records:
        print("  ".join(str(record[c] or "").ljust(widths[c]) for c in columns).rstrip(), file=out)
    return 0
