"""`kamiyo-mcp reconcile [--fix] [--since DATE] [--json]`: compare the store with Stripe, heal with --fix.

Exit codes: 0 the store agrees with Stripe; 3 drift was found (and, with --fix, healed: the report
says what was and was not); 1 Stripe could not be reached, refused the key or lacks a permission
(one line, nothing applied) or another process is reconciling; 2 bad usage or settings.
Without --fix nothing is written, so it is safe to run at any time.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import TextIO

from billing.reconcile.runner import Reconciler
from billing.reconcile.schedule import new_holder, run_leased
from billing.stripe_gateway import StripeGateway, StripeGatewayError
from kamiyo_mcp.commands.base import run
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, SettingsError

EXIT_DRIFT = 3


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `reconcile` on the CLI's subparsers."""
    parser = commands.add_parser(
        "reconcile", help="compare the store with Stripe (exit 0 in sync, 3 drift); --fix heals every drift",
        description="Compare every subscription on the configured STRIPE_PRICE_MCP_* prices, and the events Stripe "
                    "could not deliver, with the store. Exit 0: in sync; 3: drift found (healed with --fix); "
                    "1: Stripe unreachable or the key refused (nothing applied); 2: bad usage.")
    parser.add_argument("--fix", action="store_true",
                        help="heal through the webhooks' own path (claims and welcome mails included)")
    parser.add_argument("--since", type=parse_since, metavar="DATE",
                        help="only subscriptions created on or after DATE (YYYY-MM-DD or ISO 8601 time, UTC); "
                             "missed events from then (at most the last 30 days)")
    parser.add_argument("--json", action="store_true", help="the whole report as one JSON object on stdout")
    parser.set_defaults(handler=reconcile_handler)


def parse_since(value: str) -> int:
    """A date or ISO 8601 time (UTC unless it says otherwise) as unix seconds; argparse reports a bad one."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD or ISO 8601): {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def reconcile_handler(settings: Settings, args: argparse.Namespace) -> int:
    billing = settings.billing
    if not billing.stripe_secret_key:
        raise SettingsError("STRIPE_SECRET_KEY", "must be set to reconcile with Stripe")
    if not billing.prices:
        raise SettingsError("STRIPE_PRICE_MCP_PERSONAL", "no STRIPE_PRICE_MCP_* price is configured: "
                                                         "there is nothing to reconcile")
    return run(reconcile_command)(settings, args)


async def reconcile_command(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    billing = runtime.settings.billing
    assert billing.stripe_secret_key
    try:
        async with StripeGateway(billing.stripe_secret_key, billing.stripe_api_base) as gateway:
            reconciler = Reconciler(runtime.store, gateway, billing)
            if args.fix:
                report = await run_leased(runtime.store, reconciler, holder="cli-" + new_holder(),
                                          clock=time.time, since=args.since)
                assert report is not None
            else:
                report = await reconciler.run(fix=False, since=args.since)
    except StripeGatewayError as exc:
        print(f"kamiyo-mcp: reconcile: {describe_stripe_failure(exc)}; nothing was applied", file=err)
        return 1
    if args.json:
        report.write_json(out)
    else:
        print("\n".join(report.lines()), file=out)
    return EXIT_DRIFT if report.drift else 0


def describe_stripe_failure(exc: StripeGatewayError) -> str:
    """One line saying what went wrong with Stripe and what to do about it (never any part of the key)."""
    message = exc.message  # the gateway has already removed anything like a key
    if exc.http_status == 401:
        return f"Stripe refused the API key (401): {message} Check STRIPE_SECRET_KEY."
    if exc.http_status == 403:
        return ("the API key lacks a permission reconciliation needs (read access to subscriptions, customers "
                f"and events) (403): {message}")
    if exc.http_status is None:
        return f"{message} (check the network and STRIPE_API_BASE)"
    return f"Stripe failed the request ({exc.http_status}): {message}"
