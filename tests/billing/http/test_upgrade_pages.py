"""The upgrade link over HTTP: GET shows, POST acts once, then Stripe (portal flow or Checkout) and a webhook."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from billing.http.webhooks import PATH as WEBHOOK_PATH
from billing.upgrade import LinkRefused, UpgradeLinks
from tests.billing.http.app_harness import (
    PUBLIC_URL,
    SEEDED_CUSTOMER,
    SEEDED_SUBSCRIPTION,
    TEAM_PRICE,
    Billing,
    checkout_body,
    environment,
    running_app,
    signed_webhook,
)
from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe


def issuer(billing: Billing) -> UpgradeLinks:
    """Links over the app's store, as the gate's refusals issue them."""
    return UpgradeLinks(billing.runtime.store, billing.settings.billing)


async def tier_of(billing: Billing, subscription_id: str) -> str:
    async with billing.runtime.store.webhook_transaction(0) as tx:
        row = await tx.subscription(subscription_id)
    assert row is not None
    return row.tier


def code_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["code"][0]


async def deliver(billing: Billing, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    answer = await billing.client.post(WEBHOOK_PATH, content=payload, headers=signed_webhook(payload))
    assert answer.status_code == 200, answer.text


async def personal_subscriber(billing: Billing) -> None:
    assert (await billing.post_event("customer.subscription.created")).status_code == 200


async def follow(billing: Billing, code: str) -> httpx.Response:
    return await billing.client.post("/billing/upgrade", data={"code": code})


async def test_a_link_shows_the_change_then_opens_the_portals_confirm_flow_once(env: dict[str, str],
                                                                               fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        await personal_subscriber(billing)
        issued = await issuer(billing).issue(SEEDED_SUBSCRIPTION, "team", reason="tier_required")
        assert issued.url.startswith(f"{PUBLIC_URL}/billing/upgrade?code=")
        code = code_of(issued.url)

        shown = await billing.client.get(f"/billing/upgrade?code={code}")
        assert shown.status_code == 200 and "Upgrade to team" in shown.text and "Continue to Stripe" in shown.text
        assert shown.headers["cache-control"] == "no-store" and shown.headers["referrer-policy"] == "no-referrer"
        assert "form-action 'self' https://billing.stripe.com" in shown.headers["content-security-policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", shown.text)
        assert fake.requests_to("POST", "/v1/billing_portal/sessions") == []  # a GET changes nothing

        followed = await follow(billing, code)
        assert followed.status_code == 303
        portal_url = followed.headers["location"]
        assert portal_url.startswith("https://billing.stripe.com/p/session/")
        (request,) = fake.requests_to("POST", "/v1/billing_portal/sessions")
        flow = request.params["flow_data"]
        assert flow["type"] == "subscription_update_confirm"
        confirm = flow["subscription_update_confirm"]
        assert confirm["subscription"] == SEEDED_SUBSCRIPTION
        assert [(item["price"], item["quantity"]) for item in confirm["items"]] == [(TEAM_PRICE, 1)]
        assert flow["after_completion"] == {"type": "redirect",
                                            "redirect": {"return_url": f"{PUBLIC_URL}/billing/upgraded?tier=team"}}

        again = await follow(billing, code)
        assert again.status_code == 410 and "already used" in again.text

        portal_session = portal_url.rsplit("test_", 1)[-1]
        await deliver(billing, fake.complete_portal_flow(portal_session))
        assert await tier_of(billing, SEEDED_SUBSCRIPTION) == "team"
        assert await billing.runtime.store.completed_upgrade_links([issued.link_id]) == {issued.link_id}
        done = await billing.client.get(f"/billing/upgrade?code={code}")
        assert done.status_code == 409 and "already on the team tier" in done.text

        back = await billing.client.get("/billing/upgraded?tier=team")
        assert back.status_code == 200 and "Done — retry your request" in back.text and "team tier" in back.text


def checkout_completed(fake: FakeStripe, session_id: str, event_id: str) -> dict[str, Any]:
    """Stripe's `checkout.session.completed` once the buyer paid (the fake creates the subscription)."""
    session = fake.complete_session(session_id)
    return {"id": event_id, "type": "checkout.session.completed", "created": int(time.time()),
            "data": {"object": session}}


async def test_an_operator_grant_is_sent_to_checkout_and_the_purchase_completes_its_link(
        env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        grant = await billing.runtime.authority.issue_grant("friend@example.com", "personal")
        issued = await issuer(billing).issue(grant.subscription_id, "team", reason="tier_required")
        assert issued.new_subscription  # the words of the refusal say a new token comes after payment
        shown = await billing.client.get(f"/billing/upgrade?code={code_of(issued.url)}")
        assert shown.status_code == 200 and "Stripe Checkout" in shown.text
        followed = await follow(billing, code_of(issued.url))
        assert followed.status_code == 303 and followed.headers["location"].startswith("https://checkout.stripe.com/")
        (request,) = fake.requests_to("POST", "/v1/checkout/sessions")
        assert request.params["client_reference_id"] == grant.user_id
        assert request.params["customer_email"] == "friend@example.com"
        assert request.params["line_items"] == [{"price": TEAM_PRICE, "quantity": 1}]
        assert request.params["success_url"] == f"{PUBLIC_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
        assert request.params["metadata"] == {"tier": "team", "upgrade_link": issued.link_id}
        store = billing.runtime.store
        assert await store.completed_upgrade_links([issued.link_id]) == set()

        session_id = followed.headers["location"].rsplit("/", 1)[-1]
        await deliver(billing, checkout_completed(fake, session_id, "evt_upgrade_checkout_done"))
        assert await store.completed_upgrade_links([issued.link_id]) == {issued.link_id}
        assert await store.find_user_id("friend@example.com") == grant.user_id  # the same customer bought it


async def test_a_checkout_naming_someone_elses_link_or_a_lower_tier_completes_nothing(
        env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        grant = await billing.runtime.authority.issue_grant("friend@example.com", "personal")
        issued = await issuer(billing).issue(grant.subscription_id, "team", reason="tier_required")
        store = billing.runtime.store
        # Someone else's purchase whose metadata names the link (as a replayed or crafted session would).
        other = (await billing.checkout(checkout_body(tier="team", user_email="other@example.com"))).json()
        fake.state.checkout_sessions[other["session_id"]]["metadata"]["upgrade_link"] = issued.link_id
        await deliver(billing, checkout_completed(fake, other["session_id"], "evt_other_checkout"))
        # The grant's own customer buying the personal tier: below the link's target.
        lower = (await billing.checkout(checkout_body(tier="personal", user_email="friend@example.com"))).json()
        fake.state.checkout_sessions[lower["session_id"]]["metadata"]["upgrade_link"] = issued.link_id
        await deliver(billing, checkout_completed(fake, lower["session_id"], "evt_lower_checkout"))
        assert await store.completed_upgrade_links([issued.link_id]) == set()


async def test_a_link_stays_usable_when_stripe_fails_and_bad_links_say_what_to_do(env: dict[str, str],
                                                                                  fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        await personal_subscriber(billing)
        issued = await issuer(billing).issue(SEEDED_SUBSCRIPTION, "team", reason="daily_quota_exhausted")
        code = code_of(issued.url)
        fake.fail_next(500, times=3)
        failed = await follow(billing, code)
        assert failed.status_code == 502 and "link still works" in failed.text
        assert (await follow(billing, code)).status_code == 303

        unknown = await billing.client.get("/billing/upgrade?code=" + "x" * 43)
        assert unknown.status_code == 404 and "not valid" in unknown.text
        assert (await billing.client.get("/billing/upgrade")).status_code == 404
        assert (await billing.client.post("/billing/upgrade", content=b"\xff\xfe")).status_code == 404
        assert "Traceback" not in unknown.text and code not in unknown.text


async def test_a_repeated_refusal_reuses_its_unused_link_and_an_expired_one_is_refused(env: dict[str, str],
                                                                                      fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        await personal_subscriber(billing)
        links = issuer(billing)
        first = await links.issue(SEEDED_SUBSCRIPTION, "team", reason="tier_required")
        assert await links.issue(SEEDED_SUBSCRIPTION, "team", reason="tier_required") == first
        await follow(billing, code_of(first.url))
        second = await links.issue(SEEDED_SUBSCRIPTION, "team", reason="tier_required")
        assert second.link_id != first.link_id

        assert (await billing.client.get(f"/billing/upgrade?code={code_of(second.url)}")).status_code == 200
        later = UpgradeLinks(billing.runtime.store, billing.settings.billing, clock=lambda: second.expires_at)
        with pytest.raises(LinkRefused, match="expired") as refused:
            await later.show(code_of(second.url))
        assert refused.value.status == 410


ENTERPRISE_PRICE = "price_enterprise_monthly"


async def test_a_plan_with_metered_overage_is_changed_through_the_api_once_confirmed(tmp_path: Path,
                                                                                      fake: FakeStripe) -> None:
    # Stripe's portal refuses a subscription with more than one item, so the link changes it itself.
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)
    team = fake.state.prices[TEAM_PRICE]
    fake.state.prices[ENTERPRISE_PRICE] = {**copy.deepcopy(team), "id": ENTERPRISE_PRICE, "unit_amount": 29900}
    env = environment(tmp_path, fake, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE, STRIPE_METER_EVENT_NAME=METER_EVENT_NAME,
                      STRIPE_PRICE_MCP_ENTERPRISE=ENTERPRISE_PRICE)
    async with running_app(env, fake) as billing:
        subscription = fake.add_subscription(SEEDED_CUSTOMER, price=TEAM_PRICE)["id"]
        fake.billing.create_subscription_item({"subscription": subscription, "price": OVERAGE_PRICE})
        customer = fake.state.customers[SEEDED_CUSTOMER]
        await deliver(billing, {"id": "evt_upgrade_customer", "type": "customer.created",
                                "created": int(time.time()) - 5, "data": {"object": customer}})
        await deliver(billing, fake.subscription_event(subscription, "customer.subscription.created"))
        issued = await issuer(billing).issue(subscription, "enterprise", reason="overage_cap_reached")
        code = code_of(issued.url)

        shown = await billing.client.get(f"/billing/upgrade?code={code}")
        assert shown.status_code == 200 and "Upgrade now" in shown.text and "invoices the prorated" in shown.text

        fake.fail_next(500, times=3)
        failed = await follow(billing, code)
        assert failed.status_code == 502 and "link still works" in failed.text
        followed = await follow(billing, code)
        assert followed.status_code == 303, followed.text
        assert followed.headers["location"] == f"{PUBLIC_URL}/billing/upgraded?tier=enterprise"
        assert fake.requests_to("POST", "/v1/billing_portal/sessions") == []
        (changed,) = fake.requests_to("POST", f"/v1/subscriptions/{subscription}")
        assert changed.idempotency_key is not None and issued.link_id in changed.idempotency_key
        plan_item = next(i["id"] for i in fake.state.subscriptions[subscription]["items"]["data"]
                         if i["price"]["id"] == ENTERPRISE_PRICE)
        assert changed.params == {"items": [{"id": plan_item, "price": ENTERPRISE_PRICE}],
                                  "proration_behavior": "always_invoice", "payment_behavior": "pending_if_incomplete"}
        assert (await follow(billing, code)).status_code == 410  # used

        await deliver(billing, fake.subscription_event(subscription))
        assert await tier_of(billing, subscription) == "enterprise"
        assert await billing.runtime.store.completed_upgrade_links([issued.link_id]) == {issued.link_id}
        account = await billing.runtime.store.overage_account("example@example.com")
        assert account is not None and account.overage_item_id is not None  # overage stays on
