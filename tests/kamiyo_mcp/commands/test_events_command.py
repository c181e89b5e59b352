"""`kamiyo-mcp events list|show|replay` against a real store filled by real (failing, then fixed) events."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from billing.webhooks.context import Applied, EventContext
from billing.webhooks.event import parse_event
from billing.webhooks.processor import WebhookProcessor
from billing.webhooks.registry import default_registry
from kamiyo_mcp.commands.events import add_parser
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.billing.webhooks.webhook_support import environment, load_event, raw_event
from tests.support import cli

CHECKOUT_ID = load_event("checkout.session.completed")["id"]
CREATED_ID = load_event("customer.subscription.created")["id"]


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kamiyo-mcp")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(settings, args))


async def deliver(settings: Settings, names: list[str], *, failing: str | None = None) -> None:
    """Apply shared events through the webhook processor, `failing` made to fail after its writes."""
    registry = default_registry()
    if failing is not None:
        async def broken(ctx: EventContext) -> Applied:
            raise RuntimeError("the disk was unplugged")

        registry.register(failing, broken, replace=True)
    async with Runtime(settings).opened() as runtime:
        processor = WebhookProcessor(runtime.store, settings.billing, registry)
        for name in names:
            await processor.process(parse_event(raw_event(name)), raw_event(name).decode())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(environment(tmp_path))
    asyncio.run(deliver(settings, ["checkout.session.completed", "customer.subscription.created"],
                        failing="checkout.session.completed"))
    return settings


def test_events_list_shows_failed_and_processed_events_and_filters_them(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(settings, "events", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert run_cli(settings, "events", "list", "--status", "failed") == 0
    table = capsys.readouterr().out

    assert {(e["event_id"], e["status"], e["attempts"]) for e in listed} == {
        (CHECKOUT_ID, "failed", 1), (CREATED_ID, "processed", 1)}
    assert "payload" not in listed[0]
    assert CHECKOUT_ID in table and CREATED_ID not in table and "RuntimeError" in table


def test_events_show_prints_the_error_attempts_and_payload(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(settings, "events", "show", CHECKOUT_ID) == 0
    shown = json.loads(capsys.readouterr().out)

    assert shown["status"] == "failed" and shown["attempts"] == 1
    assert shown["last_error"] == "RuntimeError: the disk was unplugged"
    assert shown["payload"]["id"] == CHECKOUT_ID


def test_events_show_of_an_unknown_event_exits_1(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(settings, "events", "show", "evt_nope") == 1
    assert "no stored event evt_nope" in capsys.readouterr().err


def test_events_replay_failed_completes_the_event_and_a_second_replay_changes_nothing(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(settings, "events", "replay", "--failed") == 0
    first = capsys.readouterr().out
    assert run_cli(settings, "events", "replay", CHECKOUT_ID) == 0
    second = capsys.readouterr().out
    assert run_cli(settings, "events", "replay", "--failed") == 0
    third = capsys.readouterr()

    assert f"{CHECKOUT_ID} checkout.session.completed: processed" in first
    assert "already processed" in second
    assert third.out == "" and "no failed events" in third.err
    assert run_cli(settings, "events", "show", CHECKOUT_ID) == 0
    assert json.loads(capsys.readouterr().out)["attempts"] == 2


def test_events_replay_needs_an_event_id_or_failed(settings: Settings) -> None:
    with pytest.raises(SystemExit):
        run_cli(settings, "events", "replay")


def test_the_installed_cli_lists_events_as_json(settings: Settings) -> None:
    env = environment(settings.database_path.parent)

    result = cli(["events", "list", "--json", "--type", "customer.subscription.created"], env)

    assert result.returncode == 0, result.stderr
    assert [e["event_id"] for e in json.loads(result.stdout)] == [CREATED_ID]
