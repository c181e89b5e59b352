"""What each subscription event means for the next call of the subscription's tokens."""

from __future__ import annotations

import time
from typing import Any

from billing.access import Denial, Grant
from tests.billing.webhooks.webhook_support import SUBSCRIPTION, Webhooks, load_event
from tests.support import mint_token


async def subscribed(webhooks: Webhooks) -> str:
    for name in ("checkout.session.completed", "customer.subscription.created"):
        assert (await webhooks.post_fixture(name)).json()["status"] == "processed"
    user_id = await webhooks.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    return await mint_token(webhooks.runtime, user_id, SUBSCRIPTION)


def update(event_id: str, **fields: Any) -> dict[str, Any]:
    event = load_event("customer.subscription.updated")
    event["id"] = event_id
    event["created"] += int(event_id.rsplit("_", 1)[1])
    event["data"]["object"].update(fields)
    return event


async def call(webhooks: Webhooks, token: str, tool: str = "get_account_status") -> Grant | Denial:
    return await webhooks.runtime.authority.authorize(token, tool)


async def test_past_due_keeps_access_and_is_flagged(webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)

    await webhooks.post(update("evt_upd_1", status="past_due"))

    granted = await call(webhooks, token)
    assert isinstance(granted, Grant)
    status = webhooks.runtime.authority.account_status(granted)
    assert status["subscription"]["past_due"] is True and status["subscription"]["access"] is True


async def test_cancel_at_period_end_keeps_access_until_the_period_ends(webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)
    item = load_event("customer.subscription.updated")["data"]["object"]["items"]
    item["data"][0]["current_period_end"] = int(time.time()) + 3600

    await webhooks.post(update("evt_upd_1", cancel_at_period_end=True, items=item))
    before_end = await call(webhooks, token)
    item["data"][0]["current_period_end"] = int(time.time()) - 1
    await webhooks.post(update("evt_upd_2", cancel_at_period_end=True, items=item))
    after_end = await call(webhooks, token)

    assert isinstance(before_end, Grant)
    assert isinstance(after_end, Denial) and after_end.code == "subscription_ended"


async def test_an_unpaid_subscription_refuses_calls_without_revoking_tokens(webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)

    await webhooks.post(update("evt_upd_1", status="unpaid"))
    refused = await call(webhooks, token)

    assert isinstance(refused, Denial) and refused.code == "payment_required"
    assert webhooks.rows("SELECT revoked_at FROM tokens") == [(None,)]


async def test_a_failed_payment_sets_the_flag_and_a_later_success_clears_it_without_touching_access(
        webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)
    failed = load_event("invoice.payment_failed")
    succeeded = load_event("invoice.payment_succeeded")
    succeeded["created"] = failed["created"] + 60

    await webhooks.post(failed)
    flagged = webhooks.rows("SELECT status, payment_state FROM subscriptions")
    flagged_call = await call(webhooks, token)
    await webhooks.post(succeeded)

    assert flagged == [("active", "past_due")]
    assert isinstance(flagged_call, Grant)
    assert webhooks.rows("SELECT status, payment_state FROM subscriptions") == [("active", "paid")]


async def test_deletion_revokes_every_token_of_the_subscription_with_the_reason(webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)
    user_id = await webhooks.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    second = await mint_token(webhooks.runtime, user_id, SUBSCRIPTION)

    answer = await webhooks.post_fixture("customer.subscription.deleted")
    refusals = [await call(webhooks, t) for t in (token, second)]

    assert "2 token(s) revoked" in answer.json()["message"]
    assert webhooks.rows("SELECT DISTINCT revoked_reason FROM tokens") == [("subscription_ended",)]
    assert all(isinstance(r, Denial) and "subscription has ended" in r.message for r in refusals)
    assert webhooks.rows("SELECT DISTINCT expires_at <= ? FROM claims", (int(time.time()),)) == [(1,)]


async def test_an_upgrade_to_team_opens_team_tools_on_the_next_call(webhooks: Webhooks) -> None:
    token = await subscribed(webhooks)
    before = await call(webhooks, token, "monitor_wallet")

    await webhooks.post_fixture("customer.subscription.updated")
    after = await call(webhooks, token, "monitor_wallet")

    assert isinstance(before, Denial) and before.code == "tier_required"
    assert isinstance(after, Grant) and after.tier.name == "team" and after.tier.calls_per_minute == 120


async def test_customer_updated_keeps_the_email_in_sync_and_an_older_one_is_ignored(webhooks: Webhooks) -> None:
    await subscribed(webhooks)
    checkout_created = load_event("checkout.session.completed")["created"]
    customer = {"id": "cus_QXg1o8vcGmoR32", "object": "customer", "email": "New@Example.com", "name": "New"}
    newer = {"id": "evt_cus_2", "object": "event", "type": "customer.updated", "created": checkout_created + 20,
             "data": {"object": customer}}
    older = {**newer, "id": "evt_cus_1", "created": checkout_created + 10,
             "data": {"object": {**customer, "email": "old@example.com"}}}

    await webhooks.post(newer)
    await webhooks.post(older)

    assert webhooks.rows("SELECT email, name FROM customers") == [("new@example.com", "New")]


async def test_a_deletion_before_the_welcome_mail_went_out_cancels_it(webhooks: Webhooks) -> None:
    await webhooks.post_fixture("checkout.session.completed")
    assert webhooks.rows("SELECT COUNT(*) FROM outbox WHERE cancelled_at IS NULL AND sent_at IS NULL") == [(1,)]

    await webhooks.post_fixture("customer.subscription.deleted")

    assert webhooks.rows("SELECT COUNT(*) FROM outbox WHERE cancelled_at IS NULL AND sent_at IS NULL") == [(0,)]
