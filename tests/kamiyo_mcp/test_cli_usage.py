"""The CLI as a Unix tool: bad usage exits 2 before touching anything, `| head` is no error, help says what to set."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from billing.store.records import AuditEntry, NewToken
from billing.subscription_state import SubscriptionState
from kamiyo_mcp.cli import EXIT_BROKEN_PIPE, build_parser, main
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.support import REPO, base_env, cli


@pytest.mark.parametrize(("args", "flag"), [
    (["token", "issue", "--email", "nobody", "--tier", "team"], "--email"),
    (["token", "issue", "--email", "a@example.com", "--tier", "team", "--days", "0"], "--days"),
    (["token", "issue", "--email", "a@example.com", "--tier", "team", "--days", "3651"], "--days"),
    (["token", "issue", "--email", "a@example.com", "--tier", "team", "--days", "ten"], "--days"),
    (["token", "list", "--email", "not-an-email"], "--email"),
    (["token", "revoke", "tok_x", "--reason=   "], "--reason"),
    (["claim", "resend", "--email", "@example.com"], "--email"),
    (["events", "list", "--limit", "0"], "--limit"),
    (["serve", "--port", "70000"], "--port"),
    (["outbox", "print", "0"], "ID"),
])
def test_bad_usage_exits_2_naming_the_argument_before_anything_is_created(tmp_path: Path, args: list[str],
                                                                          flag: str) -> None:
    db = tmp_path / "fresh" / "k.db"
    result = cli(args, base_env(db))
    assert result.returncode == 2, result.stderr
    assert f"error: argument {flag}:" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr and not db.parent.exists()


def test_a_well_formed_request_that_fails_exits_1_with_one_line(tmp_path: Path) -> None:
    missing = cli(["token", "revoke", "tok_nope"], base_env(tmp_path / "k.db"))
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1] == "kamiyo-mcp: no token tok_nope"


def test_re_tiering_the_token_of_a_stripe_subscription_is_refused_as_bad_usage(tmp_path: Path) -> None:
    env = base_env(tmp_path / "k.db")

    async def paid_token() -> None:
        async with Runtime(load_settings(env)).opened() as runtime:
            now = runtime.authority.now()
            async with runtime.store.webhook_transaction(now) as tx:
                user = await tx.ensure_stripe_customer("cus_cli", email="paid@example.com", name=None, event_created=1)
                await tx.write_subscription("sub_cli", user, SubscriptionState("personal", "active", None, False, 1))
            await runtime.store.insert_token(NewToken("tok_paid", user, "sub_cli", "0" * 64, now, now + 86_400),
                                             now=now, audit=AuditEntry("test", "token.issue", "tok_paid"))

    asyncio.run(paid_token())
    result = cli(["token", "tier", "tok_paid", "team"], env)
    assert result.returncode == 2 and "change its plan in Stripe" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("args", [
    ["token", "list", "--json"], ["token", "list"], ["events", "list", "--json"], ["outbox", "list", "--json"],
])
def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path, args: list[str]) -> None:
    env = base_env(tmp_path / "k.db")
    assert cli(["token", "issue", "--email", "a@example.com", "--tier", "team"], env).returncode == 0
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    # The reading end is closed before the command writes: what `| head` does once it has its lines.
    process = subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", *args], env=full_env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr


def test_stdio_help_says_where_the_token_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["stdio", "--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0
    assert "KAMIYO_TOKEN" in shown and "claude_desktop_config.json" in shown and "exit codes" in shown


def test_every_command_help_describes_it() -> None:
    def commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
        found = [(path, parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += commands(sub, (*path, name))
        return found

    helps = commands(build_parser(), ())
    assert len(helps) >= 15
    for path, shown in helps:
        usage, _, rest = shown.partition("\n\n")
        assert rest.strip() and not rest.startswith(("positional arguments", "options")), path


def test_serve_on_a_taken_port_fails_with_one_line_before_starting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(["serve", "--port", str(port)], base_env(tmp_path / "k.db"))
    assert result.returncode == 1
    expected = f"kamiyo-mcp: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert result.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "k.db").exists()


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])
def test_serve_on_a_host_that_is_not_this_machine_is_bad_usage(tmp_path: Path, host: str) -> None:
    result = cli(["serve", "--host", host, "--port", "8000"], base_env(tmp_path / "k.db"))
    assert result.returncode == 2 and result.stderr.startswith(f"kamiyo-mcp: --host '{host}' is not")
    assert "Traceback" not in result.stderr and not (tmp_path / "k.db").exists()
