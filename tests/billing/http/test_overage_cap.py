"""The customer lowers their own overage spend cap: written to the Stripe subscription, recorded by the webhook."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from billing.http.webhooks import PATH as WEBHOOK_PATH
from tests.billing.http.app_harness import (
    SEEDED_CUSTOMER,
    TEAM_PRICE,
    Billing,
    assert_error_shape,
    environment,
    running_app,
    signed_webhook,
)
from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe
from tests.support import mint_token

CAP = "/api/billing/overage-cap"


async def deliver(billing: Billing, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    answer = await billing.client.post(WEBHOOK_PATH, content=payload, headers=signed_webhook(payload))
    assert answer.status_code == 200, answer.text


async def team_token(billing: Billing, fake: FakeStripe) -> tuple[str, str]:
    subscription = fake.add_subscription(SEEDED_CUSTOMER, price=TEAM_PRICE)["id"]
    fake.billing.create_subscription_item({"subscription": subscription, "price": OVERAGE_PRICE})
    await deliver(billing, {"id": "evt_cap_customer", "type": "customer.created", "created": int(time.time()) - 5,
                            "data": {"object": fake.state.customers[SEEDED_CUSTOMER]}})
    await deliver(billing, fake.subscription_event(subscription, "customer.subscription.created"))
    user_id = await billing.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    return subscription, await mint_token(billing.runtime, user_id, subscription, "team")


async def test_a_customer_lowers_the_cap_and_the_webhook_puts_it_in_force(tmp_path: Path, fake: FakeStripe) -> None:
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
    env = environment(tmp_path, fake, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE, STRIPE_METER_EVENT_NAME=METER_EVENT_NAME)
    async with running_app(env, fake) as billing:
        subscription, token = await team_token(billing, fake)
        bearer = {"Authorization": f"Bearer {token}"}
        answer = await billing.client.post(CAP, json={"cap_usd": 50}, headers=bearer)
        assert answer.status_code == 200, answer.text
        assert answer.json()["cap_usd"] == 50 and answer.json()["default_cap_usd"] == 200
        (written,) = fake.requests_to("POST", f"/v1/subscriptions/{subscription}")
        assert written.params == {"metadata": {"overage_cap_usd": "50"}}
        await deliver(billing, fake.subscription_event(subscription))
        account = await billing.runtime.store.overage_account("example@example.com")
        assert account is not None and (account.overage_cap_cents, account.overage_item_id is not None) == (5000, True)

        assert_error_shape(await billing.client.post(CAP, json={"cap_usd": 500}, headers=bearer), 400, "invalid_cap")
        assert_error_shape(await billing.client.post(CAP, json={"cap_usd": True}, headers=bearer), 400, "invalid_cap")
        assert_error_shape(await billing.client.post(CAP, json={}, headers=bearer), 400, "missing_field")
        assert_error_shape(await billing.client.post(CAP, json={"cap_usd": 5}), 401, "invalid_token")
        grant = (await billing.runtime.authority.issue_grant("friend@example.com", "team")).token
        refused = await billing.client.post(CAP, json={"cap_usd": 5}, headers={"Authorization": f"Bearer {grant}"})
        assert_error_shape(refused, 409, "overage_not_available")
    assert len(fake.requests_to("POST", f"/v1/subscriptions/{subscription}")) == 1


async def test_the_cap_cannot_be_set_where_overage_is_not_sold(tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(environment(tmp_path, fake), fake) as billing:
        assert_error_shape(await billing.client.post(CAP, json={"cap_usd": 5}), 503, "overage_not_configured")
