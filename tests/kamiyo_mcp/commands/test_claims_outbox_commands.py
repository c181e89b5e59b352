"""`kamiyo-mcp claim resend` and `kamiyo-mcp outbox list` against a real store, without SMTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path

import pytest

from billing.subscription_state import SubscriptionState
from kamiyo_mcp.commands import claims, outbox
from kamiyo_mcp.delivery import build_delivery
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings, load_settings
from tests.support import base_env

SUB = "sub_cli_delivery"


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kamiyo-mcp")
    commands = parser.add_subparsers(dest="command")
    claims.add_parser(commands)
    outbox.add_parser(commands)
    args = parser.parse_args(list(argv))
    return int(args.handler(settings, args))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(base_env(tmp_path / "kamiyo.db", KAMIYO_PUBLIC_URL="https://kamiyo.test"))


def subscribe(settings: Settings, email: str) -> None:
    async def go() -> None:
        async with Runtime(settings).opened() as runtime:
            async with runtime.store.webhook_transaction(1_900_000_000) as tx:
                user = await tx.ensure_stripe_customer("cus_cli", email=email, name=None, event_created=1)
                await tx.write_subscription(SUB, user, SubscriptionState("personal", "active", None, False, 1))

    asyncio.run(go())


def redeem(settings: Settings, code: str) -> str:
    async def go() -> str:
        async with Runtime(settings).opened() as runtime:
            return (await build_delivery(runtime).redeem(claim_code=code)).tier

    return asyncio.run(go())


def test_resend_queues_a_claim_mail_that_outbox_print_hands_over_with_a_working_link(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    subscribe(settings, "buyer@example.com")

    assert run_cli(settings, "claim", "resend", "--email", "Buyer@Example.com") == 0
    err = capsys.readouterr().err
    assert "queued for buyer@example.com" in err and "SMTP_HOST is unset" in err

    assert run_cli(settings, "outbox", "list") == 0
    table = capsys.readouterr().out
    assert "buyer@example.com" in table and "pending" in table and "code=" not in table

    assert run_cli(settings, "outbox", "list", "--json") == 0
    (mail,) = json.loads(capsys.readouterr().out)
    assert mail["status"] == "pending" and mail["attempts"] == 0 and mail["recipient"] == "buyer@example.com"
    assert "code=" not in json.dumps(mail)  # the link does not exist until the mail is sent

    assert run_cli(settings, "outbox", "print", str(mail["id"])) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("To: buyer@example.com\nSubject: Your new KAMIYO MCP claim link\n")
    assert "marked sent" in printed.err
    (code,) = re.findall(r"/claim\?code=([A-Za-z0-9_-]+)", printed.out)
    assert redeem(settings, code) == "personal"

    assert run_cli(settings, "outbox", "print", str(mail["id"])) == 1  # handed over once
    assert "is sent" in capsys.readouterr().err


def test_a_second_resend_kills_the_first_link(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    subscribe(settings, "again@example.com")
    assert run_cli(settings, "claim", "resend", "--email", "again@example.com") == 0
    assert run_cli(settings, "claim", "resend", "--email", "again@example.com") == 0
    capsys.readouterr()
    assert run_cli(settings, "outbox", "list", "--json") == 0
    first, second = json.loads(capsys.readouterr().out)
    assert first["status"] == "cancelled" and "body_text" not in first and second["status"] == "pending"


def test_resend_for_an_unknown_email_fails_with_one_line(settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(settings, "claim", "resend", "--email", "nobody@example.com") == 1
    assert capsys.readouterr().err.strip() == "kamiyo-mcp: no Stripe subscription for nobody@example.com"
    assert run_cli(settings, "outbox", "list") == 0
    assert "the outbox is empty" in capsys.readouterr().err
