"""`kamiyo-mcp claim resend --email E`: mail a customer a new claim link; the earlier ones stop working."""

from __future__ import annotations

import argparse
from typing import TextIO

from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import run
from kamiyo_mcp.delivery import build_delivery
from kamiyo_mcp.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    claim = commands.add_parser("claim", help="re-send a customer's token claim link",
                                description="Re-send a customer's token claim link.")
    claim_commands = claim.add_subparsers(dest="claim_command", metavar="ACTION", required=True)
    resend = claim_commands.add_parser(
        "resend", help="write a new claim email to the outbox; earlier unredeemed claims and unsent mails end",
        description="Write a new claim email for the customer's latest Stripe subscription to the outbox; earlier "
                    "unredeemed claims and unsent mails end. The running server sends it (SMTP_HOST).")
    resend.add_argument("--email", required=True, type=arguments.email)
    resend.set_defaults(handler=run(_claim_resend))


async def _claim_resend(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    resent = await build_delivery(runtime).resend(args.email, actor="cli")
    sending = ("the running server sends it shortly" if runtime.settings.mail.enabled
               else "SMTP_HOST is unset: see 'kamiyo-mcp outbox list'")
    print(f"new claim email {resent.outbox_id} queued for {resent.recipient} (subscription {resent.subscription_id}); "
          f"{resent.claims_ended} earlier claim(s) ended; {sending}", file=err)
    return 0
