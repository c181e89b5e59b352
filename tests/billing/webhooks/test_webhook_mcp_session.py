"""With an MCP session open, a webhook answered 200 is in force for the very next tool call."""

from __future__ import annotations

from tests.billing.webhooks.webhook_support import SUBSCRIPTION, LiveApp
from tests.support import mint_token
from tests.support_mcp import mcp_session, text_of


async def subscribed_token(app: LiveApp) -> str:
    """A personal subscription made by webhooks, and a token minted for it (the claim flow comes later)."""
    for name in ("checkout.session.completed", "customer.subscription.created"):
        assert (await app.deliver(name)).status_code == 200
    user_id = await app.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    return await mint_token(app.runtime, user_id, SUBSCRIPTION)


async def test_a_deletion_answered_200_refuses_the_very_next_tool_call(live_app: LiveApp) -> None:
    token = await subscribed_token(live_app)
    async with mcp_session(live_app.url, token) as client:
        before = await client.call_tool("get_account_status", {})
        assert not before.is_error and before.structured_content["tier"] == "personal"

        deleted = await live_app.deliver("customer.subscription.deleted")
        assert deleted.status_code == 200 and "1 token(s) revoked" in deleted.json()["message"]
        refused = await client.call_tool("get_account_status", {})

    assert refused.is_error
    assert "subscription has ended" in text_of(refused) and "/pricing" in text_of(refused)


async def test_an_update_to_team_answered_200_runs_the_very_next_call_at_team_limits(live_app: LiveApp) -> None:
    token = await subscribed_token(live_app)
    async with mcp_session(live_app.url, token) as client:
        before = await client.call_tool("get_account_status", {})
        assert before.structured_content["limits"]["calls_per_minute"] == 30

        assert (await live_app.deliver("customer.subscription.updated")).status_code == 200
        after = await client.call_tool("get_account_status", {})

    assert not after.is_error
    assert after.structured_content["tier"] == "team"
    assert after.structured_content["limits"]["calls_per_minute"] == 120
    assert after.structured_content["limits"]["monitor_wallet"] is True
