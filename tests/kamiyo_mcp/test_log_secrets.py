"""No log level lets a secret out: a whole paid flow at DEBUG, in a real server process, then grep."""

from __future__ import annotations

from pathlib import Path

from tests.billing.http.delivery_harness import Inbox
from tests.fakes.stripe_fake import run_fake_stripe
from tests.paid_flow import paid_flow_env, run_paid_flow
from tests.support import ServerProcess


async def test_a_paid_flow_logged_at_debug_shows_no_token_claim_code_session_id_or_key(
        tmp_path: Path, inbox: Inbox, server_factory: type[ServerProcess]) -> None:
    with run_fake_stripe() as fake:
        server = server_factory(paid_flow_env(tmp_path / "kamiyo.db", fake, inbox.port)).start()
        flow = await run_paid_flow(server, fake, inbox)
        server.stop()
    log = server.logs()

    assert " DEBUG " in log  # DEBUG was really on
    assert flow.leaks_in(log) == []
    assert " aiosqlite: " not in log  # the SQL parameter printer is clamped, not merely lucky

