"""The gate and metered overage, in-process on a clock the test moves: a metered call that fails inside
its tool is not billed, one that succeeds is; the account status tells the customer where they stand."""

from __future__ import annotations

from pathlib import Path

from billing.store.meter_sql import write_overage
from billing.subscription_state import SubscriptionState
from tests.kamiyo_mcp.live import Live, live_app
from tests.support import mint_token
from tests.support_mcp import mcp_session, text_of

SUB = "sub_overage_gate"


async def team_with_overage(live: Live) -> str:
    runtime = live.runtime
    now = int(live.clock())
    async with runtime.store.webhook_transaction(now) as tx:
        user_id = await tx.ensure_stripe_customer("cus_gate", email="gate@example.com", name=None, event_created=1)
        await tx.write_subscription(SUB, user_id, SubscriptionState("team", "active", now + 86_400 * 20, False, now))
        await write_overage(tx.db, SUB, item_id="si_metered", cap_cents=None, now=now)
    return await mint_token(runtime, user_id, SUB, "team")


async def test_a_metered_call_that_fails_in_its_tool_is_not_billed(tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text("[team]\ncalls_per_day = 1\n")
    env = {"KAMIYO_TIERS_FILE": str(tiers), "STRIPE_SECRET_KEY": "sk_test_gate_0123456789",
           "STRIPE_PRICE_MCP_OVERAGE": "price_overage", "STRIPE_METER_EVENT_NAME": "kamiyo_mcp_calls"}
    async with live_app(tmp_path / "kamiyo.db", **env) as live:
        token = await team_with_overage(live)
        async with mcp_session(live.url, token) as client:
            first = await client.call_tool("get_account_status", {})  # within the day's one call
            failed = await client.call_tool("monitor_wallet", {"address": "not-an-address"})
            billed = await client.call_tool("get_account_status", {})
        store = live.runtime.store
        events = {status for _, _, status in await store.meter_events_of(SUB)}
    assert first.structured_content is not None and first.structured_content["overage"]["this_call_metered"] is False
    assert failed.is_error and "address" in text_of(failed).lower()
    assert billed.structured_content is not None
    overage = billed.structured_content["overage"]
    assert overage["this_call_metered"] is True and overage["enabled"] is True
    assert overage["calls_this_period"] == 1  # the failed call gave its place back
    assert overage["estimated_cost_usd"] == 0.0 and overage["cap_usd"] == 200.0  # $2 per 1,000: rounds to $0.00
    assert events == {"voided", "pending"}
