"""A full day's link that turns metered overage on: offered only where it can be had, shown, used once
(the metered item added through Stripe's API), and completed only by the webhook that shows the item."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from billing.claims import claim_hash as issued_hash
from billing.http.webhooks import PATH as WEBHOOK_PATH
from billing.upgrade import UpgradeLinks
from tests.billing.http.app_harness import (
    PUBLIC_URL,
    SEEDED_CUSTOMER,
    TEAM_PRICE,
    Billing,
    environment,
    running_app,
    signed_webhook,
)
from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe


async def deliver(billing: Billing, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    answer = await billing.client.post(WEBHOOK_PATH, content=payload, headers=signed_webhook(payload))
    assert answer.status_code == 200, answer.text


async def subscribed(billing: Billing, fake: FakeStripe, price: str) -> str:
    subscription = fake.add_subscription(SEEDED_CUSTOMER, price=price)["id"]
    await deliver(billing, {"id": f"evt_customer_{subscription[-6:]}", "type": "customer.created",
                            "created": int(time.time()) - 5, "data": {"object": fake.state.customers[SEEDED_CUSTOMER]}})
    await deliver(billing, fake.subscription_event(subscription, "customer.subscription.created"))
    return str(subscription)


def overage_env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
    return environment(tmp_path, fake, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE,
                       STRIPE_METER_EVENT_NAME=METER_EVENT_NAME)


async def test_the_overage_link_adds_the_metered_item_once_and_only_its_webhook_completes_it(
        tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        subscription = await subscribed(billing, fake, TEAM_PRICE)
        links = UpgradeLinks(billing.runtime.store, billing.settings.billing)
        issued = await links.issue_overage(subscription)
        assert issued is not None and issued.overage and issued.target_tier == "team"
        assert await links.issue_overage(subscription) == issued  # a repeated refusal reuses it
        code = parse_qs(urlsplit(issued.url).query)["code"][0]

        shown = await billing.client.get(f"/billing/upgrade?code={code}")
        assert shown.status_code == 200 and "Turn on overage" in shown.text
        assert "$2.00 per 1,000 calls" in shown.text and "$200.00 per billing period" in shown.text
        assert fake.requests_to("POST", "/v1/subscription_items") == []  # a GET changes nothing

        followed = await billing.client.post("/billing/upgrade", data={"code": code})
        assert followed.status_code == 303
        assert followed.headers["location"] == f"{PUBLIC_URL}/billing/upgraded?tier=team&overage=on"
        (added,) = fake.requests_to("POST", "/v1/subscription_items")
        assert added.params == {"subscription": subscription, "price": OVERAGE_PRICE}
        assert added.idempotency_key is not None and issued.link_id in added.idempotency_key
        assert (await billing.client.post("/billing/upgrade", data={"code": code})).status_code == 410

        store = billing.runtime.store
        fake.billing.update_subscription(subscription, {"metadata": {"note": "x"}})
        fake.state.subscriptions[subscription]["items"]["data"] = [
            i for i in fake.state.subscriptions[subscription]["items"]["data"] if i["price"]["id"] != OVERAGE_PRICE]
        await deliver(billing, fake.subscription_event(subscription))  # a change without the item
        assert await store.completed_upgrade_links([issued.link_id]) == set()
        fake.billing.create_subscription_item({"subscription": subscription, "price": OVERAGE_PRICE})
        await deliver(billing, fake.subscription_event(subscription))
        assert await store.completed_upgrade_links([issued.link_id]) == {issued.link_id}
        assert await links.issue_overage(subscription) is None  # on now: nothing more to offer
        done = await billing.client.get(f"/billing/upgrade?code={code}")
        assert done.status_code == 409 and "already on" in done.text
        back = await billing.client.get("/billing/upgraded?tier=team&overage=on")
        assert back.status_code == 200 and "overage is being turned on" in back.text


async def test_overage_is_offered_only_where_it_can_be_had(tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        links = UpgradeLinks(billing.runtime.store, billing.settings.billing)
        personal = await subscribed(billing, fake, "price_1PgafmB7WZ01zgkW6dKueIc5")
        assert await links.issue_overage(personal) is None  # the personal tier sells no overage
        grant = await billing.runtime.authority.issue_grant("friend@example.com", "team")
        assert await links.issue_overage(grant.subscription_id) is None  # an operator grant has no Stripe item
        assert await links.issue_overage("sub_unknown") is None
    async with running_app(environment(tmp_path / "plain", fake), fake) as billing:
        team = await subscribed(billing, fake, TEAM_PRICE)
        links = UpgradeLinks(billing.runtime.store, billing.settings.billing)
        assert await links.issue_overage(team) is None  # overage not sold on this server


async def test_the_customer_can_lower_the_cap_on_the_overage_page_and_a_bad_cap_uses_nothing(
        tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        subscription = await subscribed(billing, fake, TEAM_PRICE)
        issued = await UpgradeLinks(billing.runtime.store, billing.settings.billing).issue_overage(subscription)
        assert issued is not None
        code = parse_qs(urlsplit(issued.url).query)["code"][0]
        shown = await billing.client.get(f"/billing/upgrade?code={code}")
        assert 'name="cap_usd"' in shown.text and 'max="200"' in shown.text

        for bad in ("500", "-1", "12.5", "lots"):
            refused = await billing.client.post("/billing/upgrade", data={"code": code, "cap_usd": bad})
            assert refused.status_code == 400 and "from 0 to 200" in refused.text, bad
        assert fake.requests_to("POST", "/v1/subscription_items") == []  # nothing happened, the link is unused

        followed = await billing.client.post("/billing/upgrade", data={"code": code, "cap_usd": "50"})
        assert followed.status_code == 303
        (capped,) = fake.requests_to("POST", f"/v1/subscriptions/{subscription}")
        assert capped.params == {"metadata": {"overage_cap_usd": "50"}}
        assert len(fake.requests_to("POST", "/v1/subscription_items")) == 1
        await deliver(billing, fake.subscription_event(subscription))
        shown_after = await billing.runtime.store.upgrade_link(issued_hash(code))
        assert shown_after is not None and shown_after.overage_cap_cents == 5000
        assert shown_after.overage_item_id is not None and shown_after.completed_at is not None
