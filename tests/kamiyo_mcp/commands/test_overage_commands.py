"""`kamiyo-mcp overage on|off` and `kamiyo-mcp usage` against a real store and the fake Stripe over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from billing.webhooks.event import parse_event
from billing.webhooks.processor import WebhookProcessor
from kamiyo_mcp.commands import overage
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.fakes.fixtures import METER_EVENT_NAME as EVENT_NAME
from tests.fakes.fixtures import OVERAGE_PRICE, run_metered_fake_stripe
from tests.fakes.stripe_fake import FakeStripe
from tests.support import base_env

CUSTOMER = "cus_QXg1o8vcGmoR32"  # seeded in the fake, email example@example.com
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_metered_fake_stripe() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, fake: FakeStripe) -> Settings:
    return load_settings(base_env(
        tmp_path / "kamiyo.db", KAMIYO_PUBLIC_URL="https://kamiyo.test", STRIPE_SECRET_KEY="sk_test_cli_overage",
        STRIPE_API_BASE=fake.base_url, STRIPE_PRICE_MCP_TEAM=TEAM_PRICE, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE,
        STRIPE_METER_EVENT_NAME=EVENT_NAME))


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kamiyo-mcp")
    overage.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(settings, args))


def deliver(settings: Settings, *events: dict[str, Any]) -> None:
    """Apply Stripe's events through the webhook processor (the endpoint's own path after verification)."""
    async def go() -> None:
        async with Runtime(settings).opened() as runtime:
            processor = WebhookProcessor(runtime.store, settings.billing)
            for event in events:
                payload = json.dumps(event)
                outcome = await processor.process(parse_event(payload), payload)
                assert outcome.status == "processed", outcome

    asyncio.run(go())


def team_subscriber(settings: Settings, fake: FakeStripe) -> str:
    subscription = fake.add_subscription(CUSTOMER, price=TEAM_PRICE)
    customer_event = {"id": "evt_cli_customer", "type": "customer.created", "created": int(time.time()) - 10,
                      "data": {"object": fake.state.customers[CUSTOMER]}}
    deliver(settings, customer_event, fake.subscription_event(subscription["id"], "customer.subscription.created"))
    return str(subscription["id"])


def usage(settings: Settings, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run_cli(settings, "usage", "--email", "Example@example.com", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_overage_on_adds_the_metered_item_and_the_webhook_records_the_opt_in_and_cap(
        settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]) -> None:
    subscription_id = team_subscriber(settings, fake)
    assert usage(settings, capsys)["overage"]["enabled"] is False

    assert run_cli(settings, "overage", "on", "--email", "example@example.com", "--cap", "50") == 0
    assert "overage on" in capsys.readouterr().err
    (added,) = fake.requests_to("POST", "/v1/subscription_items")
    assert added.params == {"subscription": subscription_id, "price": OVERAGE_PRICE}  # metered: no quantity
    (metadata,) = fake.requests_to("POST", f"/v1/subscriptions/{subscription_id}")
    assert metadata.params == {"metadata": {"overage_cap_usd": "50"}}

    deliver(settings, fake.subscription_event(subscription_id))
    report = usage(settings, capsys)
    assert report["tier"] == "team" and report["overage"]["enabled"] is True
    assert report["overage"]["cap_usd"] == 50.0 and report["overage"]["calls_left_under_cap"] == 25_000
    assert report["meter_events"] == {"pending": 0, "sent": 0, "failed": 0, "not_billed": 0}

    items = fake.state.subscriptions[subscription_id]["items"]["data"]
    (metered_item,) = [item["id"] for item in items if item["price"]["id"] == OVERAGE_PRICE]
    assert run_cli(settings, "overage", "off", "--email", "example@example.com") == 0
    (removed,) = fake.requests_to("DELETE", f"/v1/subscription_items/{metered_item}")
    assert removed.params == {"proration_behavior": "always_invoice"}
    deliver(settings, fake.subscription_event(subscription_id))
    assert usage(settings, capsys)["overage"]["enabled"] is False


def test_the_plain_usage_report_names_the_cap_and_what_is_left(settings: Settings, fake: FakeStripe,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    team_subscriber(settings, fake)
    assert run_cli(settings, "usage", "--email", "example@example.com") == 0
    text = capsys.readouterr().out
    assert "team (active)" in text and "overage: off" in text and "cap: $200.00 per period" in text


def test_overage_cannot_be_turned_on_for_a_tier_without_it_or_above_the_default_cap(
        settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]) -> None:
    team_subscriber(settings, fake)
    assert run_cli(settings, "overage", "on", "--email", "example@example.com", "--cap", "5000") == 2
    assert "--cap must be from 0 to the operator's default of $200" in capsys.readouterr().err
    assert run_cli(settings, "overage", "on", "--email", "nobody@example.com") == 1
    assert "no Stripe subscription for nobody@example.com" in capsys.readouterr().err
    assert fake.requests_to("POST", "/v1/subscription_items") == []


def test_on_and_off_read_stripe_so_a_change_whose_webhook_is_late_is_not_made_twice(
        settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]) -> None:
    subscription_id = team_subscriber(settings, fake)
    assert run_cli(settings, "overage", "on", "--email", "example@example.com") == 0
    assert run_cli(settings, "overage", "on", "--email", "example@example.com") == 0  # no webhook yet
    assert "already on" in capsys.readouterr().err
    assert len(fake.requests_to("POST", "/v1/subscription_items")) == 1

    items = fake.state.subscriptions[subscription_id]["items"]["data"]
    (metered_item,) = [item["id"] for item in items if item["price"]["id"] == OVERAGE_PRICE]
    assert run_cli(settings, "overage", "off", "--email", "example@example.com") == 0  # the store never saw it on
    assert len(fake.requests_to("DELETE", f"/v1/subscription_items/{metered_item}")) == 1
    assert run_cli(settings, "overage", "off", "--email", "example@example.com") == 0
    assert "already off" in capsys.readouterr().err
    assert len(fake.requests_to("DELETE", f"/v1/subscription_items/{metered_item}")) == 1


def test_stripe_unreachable_is_one_line_and_exit_1(settings: Settings, fake: FakeStripe,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    team_subscriber(settings, fake)
    fake.fail_next(500, times=10)
    assert run_cli(settings, "overage", "on", "--email", "example@example.com") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kamiyo-mcp:") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert fake.requests_to("POST", "/v1/subscription_items") == []
