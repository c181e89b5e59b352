"""Two server processes on one SQLite file share one truth: quotas and revocations.

The quota tests run the processes on a clock the test sets (tests/clock_server.py): every call
falls in the one minute the test chose, however long the calls take.
"""

import time
from pathlib import Path
from typing import Any

import pytest

from tests.clock_server import set_clock
from tests.support import DATA, ServerProcess, base_env, cli
from tests.support_mcp import account_calls, mcp_session, text_of


# The account view's trip reads the token's state; every other tool's is the admit-and-count statement alone.
@pytest.mark.parametrize("tool, arguments", [("get_account_status", {}),
                                             ("search_crypto_exploits", {"query": "flash loan"})])
async def test_two_processes_share_the_per_minute_limit_exactly(
    tmp_path: Path, server_factory: type[ServerProcess], tool: str, arguments: dict[str, Any]
) -> None:
    env = base_env(tmp_path / "k.db")
    if tool != "get_account_status":  # an intel tool answers (not an error) only with incidents loaded
        exploits = DATA / "exploits"
        assert cli(["ingest", str(exploits / "exploits.jsonl")], env, timeout=120).returncode == 0
    clock = tmp_path / "clock"
    minute = int(time.time()) // 60 * 60
    set_clock(clock, minute + 59)  # the last second of a minute: the window must still hold every call
    a, b = server_factory(env, clock_file=clock).start(), server_factory(env, clock_file=clock).start()
    token = cli(["token", "issue", "--email", "shared@example.com", "--tier", "personal"], env).stdout.strip()
    async with mcp_session(a.url, token) as first, mcp_session(b.url, token) as second:
        outcomes = await account_calls((first, 23), (second, 22), refusal="30 calls per minute", tool=tool,
                                       arguments=arguments)
        assert outcomes.count(True) == 30 and outcomes.count(False) == 15
        set_clock(clock, minute + 60)  # the next minute opens a new window in both processes
        again = await account_calls((first, 16), (second, 16), refusal="30 calls per minute", tool=tool,
                                    arguments=arguments)
    assert again.count(True) == 30 and again.count(False) == 2


async def test_a_revocation_through_one_process_refuses_the_next_call_through_the_other(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    env = base_env(tmp_path / "k.db")
    assert cli(["ingest", str(DATA / "exploits" / "exploits.jsonl")], env, timeout=120).returncode == 0
    a, b = server_factory(env).start(), server_factory(env).start()
    token = cli(["token", "issue", "--email", "two@example.com", "--tier", "team"], env).stdout.strip()
    async with mcp_session(a.url, token) as via_a, mcp_session(b.url, token) as via_b:
        status = await via_a.call_tool("get_account_status", {})
        assert not status.is_error and status.structured_content
        assert not (await via_b.call_tool("get_account_status", {})).is_error
        token_id = status.structured_content["token"]["token_id"]
        assert cli(["token", "revoke", token_id, "--reason", "abuse"], env).returncode == 0
        for client in (via_b, via_a):  # both per-call paths: a tool's call, and the account view's
            for tool, arguments in (("search_crypto_exploits", {"query": "flash loan"}), ("get_account_status", {})):
                refused = await client.call_tool(tool, arguments)
                assert refused.is_error and "revoked (abuse)" in text_of(refused), tool
