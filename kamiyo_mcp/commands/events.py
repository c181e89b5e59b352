"""`kamiyo-mcp events list|show|replay`: the operator's view of the Stripe events the store holds.

`replay` re-applies stored payloads through the webhook's own processor, so it is idempotent: an
event already processed is reported as such and not applied again.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TextIO

from billing.store.billing_sql import EVENT_SOURCES, EventRecord
from billing.webhooks.event import MalformedEventError
from billing.webhooks.processor import Outcome, WebhookProcessor
from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.runtime import Runtime

STATUSES = ("received", "processed", "failed", "ignored")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `events` and its subcommands on the CLI's subparsers."""
    events = commands.add_parser("events", help="list, show or replay the Stripe webhook events received",
                                 description="List, show or replay the Stripe webhook events the store holds.")
    actions = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="stored events, newest first (never their payloads)",
                                 description="Stored events, newest first: id, type, status, attempts, created, "
                                             "last error (never their payloads).")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--type", dest="event_type", metavar="TYPE", help="only this event type")
    listing.add_argument("--source", choices=EVENT_SOURCES,
                         help="only events applied from this source (webhook: delivered to us; recovery: fetched "
                              "from Stripe after it could not deliver them)")
    listing.add_argument("--limit", type=arguments.limit, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    listing.set_defaults(handler=run(events_list))

    show = actions.add_parser("show", help="one event: its status, error, attempts and payload",
                              description="One event as JSON: its status, error, attempts and payload.")
    show.add_argument("event_id")
    show.set_defaults(handler=run(events_show))

    replay = actions.add_parser("replay", help="re-apply a stored event (or every failed one); idempotent",
                                description="Re-apply a stored event (or every failed one) through the webhook's "
                                            "own code path; an event already applied is not applied again.")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("event_id", nargs="?")
    target.add_argument("--failed", action="store_true", help="replay every event whose last attempt failed")
    replay.set_defaults(handler=run(events_replay))


async def events_list(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    records = await runtime.store.list_events(status=args.status, event_type=args.event_type, source=args.source,
                                              limit=args.limit)
    rows = [_summary(record) for record in records]
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    if not rows:
        print("no events", file=err)
        return 0
    columns = ("event_id", "type", "status", "source", "attempts", "created", "last_error")
    widths = {c: max(len(c), *(len(_cell(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip(), file=out)
    for row in rows:
        print("  ".join(_cell(row[c]).ljust(widths[c]) for c in columns).rstrip(), file=out)
    return 0


async def events_show(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    record = await runtime.store.get_event(args.event_id)
    if record is None:
        print(f"kamiyo-mcp: no stored event {args.event_id}", file=err)
        return 1
    shown = _summary(record)
    shown["payload"] = json.loads(record.payload) if record.payload else None
    json.dump(shown, out, indent=2)
    out.write("\n")
    return 0


async def events_replay(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    processor = WebhookProcessor(runtime.store, runtime.settings.billing)
    try:
        outcomes: list[Outcome] = (await processor.replay_failed() if args.failed
                                   else [await processor.replay(args.event_id)])
    except MalformedEventError as exc:
        print(f"kamiyo-mcp: the stored payload cannot be replayed: {exc}", file=err)
        return 1
    if not outcomes:
        print("no failed events", file=err)
    for outcome in outcomes:
        print(f"{outcome.event_id} {outcome.event_type}: {outcome.status}: {outcome.message}", file=out)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _summary(record: EventRecord) -> dict[str, object]:
    summary = asdict(record)
    del summary["payload"]
    for key in ("created", "received_at", "processed_at"):
        summary[key] = iso(summary[key])
    return summary


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."

