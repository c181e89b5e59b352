"""`kamiyo-mcp outbox list|print`: the mails the server has sent or still has to send.

The outbox holds what renders a mail, never a claim link: a mail is composed (its link's code
generated, only the code's hash stored) when it is sent. Without SMTP an operator hands a mail
over with `outbox print ID`, which composes it as the sender would, prints it and marks it sent.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TextIO

from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.delivery import build_sender
from kamiyo_mcp.runtime import Runtime

LEASE_SECONDS = 300


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="list the mails in the outbox, or print one to forward it",
                                 description="The mails the server has sent or still has to send. A claim link "
                                             "is made only when its mail is sent, so the outbox holds none.")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    listing = outbox_commands.add_parser("list", help="list mails, oldest first",
                                         description="List mails, oldest first: kind, status, recipient, subject, "
                                                     "attempts and the last error. Without SMTP, hand a pending mail "
                                                     "over with 'outbox print ID'.")
    listing.add_argument("--pending", action="store_true", help="only mails not sent yet")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    listing.set_defaults(handler=run(_outbox_list))
    printing = outbox_commands.add_parser(
        "print", help="compose a pending mail now, print it on stdout for you to forward, and mark it sent",
        description="Compose a pending mail as the sender would (its claim link is made now; only the link's "
                    "hash is stored), print it on stdout for you to forward, and mark it sent.")
    printing.add_argument("mail_id", type=arguments.row_id, metavar="ID", help="the mail's id, from 'outbox list'")
    printing.set_defaults(handler=run(_outbox_print))


async def _outbox_list(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = await runtime.store.list_outbox(pending_only=args.pending)
    records: list[dict[str, object]] = []
    for row in rows:
        pending = row.status in ("pending", "retrying")
        records.append({
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
        })
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


async def _outbox_print(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = int(time.time())
    store = runtime.store
    taken = await store.take_due_mail(now, retry_at=lambda attempts: now + LEASE_SECONDS, mail_id=args.mail_id)
    if not taken:
        row = await store.get_mail(args.mail_id)
        print(f"kamiyo-mcp: mail {args.mail_id} is {row.status if row else 'not in the outbox'}; nothing printed",
              file=err)
        return 1
    mail = await build_sender(runtime).compose(taken[0])
    if mail is None:
        row = await store.get_mail(args.mail_id)
        state = f"{row.status}: {row.last_error}" if row else "gone"
        print(f"kamiyo-mcp: mail {args.mail_id} was not composed ({state})", file=err)
        return 1
    print(f"To: {mail.recipient}\nSubject: {mail.subject}\n\n{mail.body_text}", file=out, end="")
    await store.mark_mail_sent(args.mail_id, now=int(time.time()), subject=mail.subject)
    print(f"mail {args.mail_id} is marked sent: forward it to {mail.recipient} (its link works once)", file=err)
    return 0
