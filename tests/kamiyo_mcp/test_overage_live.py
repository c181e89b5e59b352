"""Metered overage against a real server process, the official MCP client and the fake Stripe: a team
subscription past its daily quota with overage on keeps working, Stripe receives exactly one meter
event per overage call even when the server is killed (-9) mid-send and Stripe answers 500/429 for a
while, and past the spend cap calls are refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.fixtures import OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe
from tests.kamiyo_mcp.overage_live import CUSTOMER, TEAM_PRICE, Shop, fake, open_shop, until, upgrade_link
from tests.support import ServerProcess
from tests.support_mcp import mcp_session, text_of

__all__ = ["fake"]  # the fixture, used by name
METER_EVENTS = "/v1/billing/meter_events"


async def team_with_overage(shop: Shop) -> str:
    subscription = shop.fake.add_subscription(CUSTOMER, price=TEAM_PRICE)
    shop.fake.billing.create_subscription_item({"subscription": subscription["id"], "price": OVERAGE_PRICE})
    return await shop.subscribe(subscription["id"], "team")


def stored_events(shop: Shop) -> dict[str, str]:
    return dict(shop.rows("SELECT identifier, status FROM meter_events"))


async def test_overage_calls_are_billed_exactly_once_through_a_kill_and_stripe_failures_then_capped(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory)
    token = await team_with_overage(shop)
    fake.hold_replies(METER_EVENTS)  # Stripe applies the events but its answers stay in flight
    async with mcp_session(shop.server.url, token) as client:
        answers = [await client.call_tool("get_account_status", {}) for _ in range(9)]
    assert not any(a.is_error for a in answers)
    views = [a.structured_content["overage"] for a in answers if a.structured_content]
    assert [v["this_call_metered"] for v in views] == [False] * 3 + [True] * 6
    assert views[-1]["calls_this_period"] == 6 and views[-1]["estimated_cost_usd"] == 0.6
    assert views[-1]["cap_usd"] == 1.0 and views[-1]["calls_left_under_cap"] == 4

    now = time.time()
    shop.set_time(now + 10)  # past the settle delay: the sender posts them
    await until(lambda: len(fake.requests_to("POST", METER_EVENTS)) >= 1, message="the sender never posted")
    shop.server.process.kill()  # kill -9 with requests in flight
    shop.server.process.wait(timeout=10)
    assert all(status == "pending" for status in stored_events(shop).values())  # none recorded as sent

    fake.release_replies(METER_EVENTS)
    fake.fail_next(500, times=3)
    fake.fail_next(429, times=2)
    restarted = server_factory(shop.env, clock_file=shop.clock).start()
    shop.server = restarted
    step = now + 45  # past the dead sender's lease
    with anyio.fail_after(60):
        while any(status != "sent" for status in stored_events(shop).values()):
            shop.set_time(step)
            await anyio.sleep(0.3)  # the server's sender works meanwhile; bounded by fail_after
            ((due,),) = shop.rows("SELECT MAX(next_attempt_at) FROM meter_events WHERE status = 'pending'")
            step = max(step, float(due or step))  # on to the next retry's time, no further

    events = stored_events(shop)
    assert len(events) == 6 and sorted(fake.billed_identifiers()) == sorted(events)
    assert len(fake.requests_to("POST", METER_EVENTS)) > 6  # resent after the kill and the failures

    async with mcp_session(restarted.url, token) as client:
        more = [await client.call_tool("get_account_status", {}) for _ in range(5)]
    assert [a.is_error for a in more] == [False] * 4 + [True]
    assert "overage spend cap of $1.00" in text_of(more[-1]) and "is reached" in text_of(more[-1])
    shop.set_time(step + 10)  # past the new events' settle delay
    await until(lambda: sorted(fake.billed_identifiers()) == sorted(stored_events(shop)) and len(
        stored_events(shop)) == 10, message="the last overage calls were not delivered")
    # Stripe has them; the sender marks each row sent once Stripe's answer is back, so wait for that.
    await until(lambda: set(stored_events(shop).values()) == {"sent"}, message="delivered events were not marked sent")
    async with httpx.AsyncClient(base_url=restarted.url) as http:
        metrics = (await http.get("/metrics")).text
    assert 'kamiyo_meter_events{status="sent"} 10.0' in metrics
    assert 'kamiyo_meter_events{status="pending"} 0.0' in metrics
    assert 'kamiyo_meter_events{status="failed"} 0.0' in metrics


async def test_a_full_day_offers_overage_in_two_clicks_and_the_retried_call_runs_metered(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory)
    subscription = shop.fake.add_subscription(CUSTOMER, price=TEAM_PRICE)["id"]
    token = await shop.subscribe(subscription, "team")  # overage not on
    async with mcp_session(shop.server.url, token) as client:
        within = [await client.call_tool("get_account_status", {}) for _ in range(3)]
        refused = await client.call_tool("get_account_status", {})
        assert not any(a.is_error for a in within) and refused.is_error
        text = text_of(refused)
        assert "daily quota of 3 calls" in text and "turn on metered overage in two clicks" in text
        await shop.turn_on_overage(upgrade_link(text), subscription)
        (added,) = fake.requests_to("POST", "/v1/subscription_items")
        assert added.params == {"subscription": subscription, "price": OVERAGE_PRICE}
        retried = await client.call_tool("get_account_status", {})
    assert not retried.is_error, text_of(retried)
    assert retried.structured_content is not None
    assert retried.structured_content["overage"]["this_call_metered"] is True
    assert shop.rows("SELECT reason, completed_at IS NOT NULL FROM upgrade_links") == [("overage_on", 1)]
    assert list(stored_events(shop).values()) == ["pending"]  # the retried call is billed


async def test_an_eliciting_client_is_asked_to_turn_overage_on_and_its_call_runs(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory)
    subscription = shop.fake.add_subscription(CUSTOMER, price=TEAM_PRICE)["id"]
    token = await shop.subscribe(subscription, "team")
    asked: list[types.ElicitRequestURLParams] = []

    async def person(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        asked.append(params)
        await shop.turn_on_overage(params.url, subscription)
        return types.ElicitResult(action="accept")

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        transport = streamable_http_client(shop.server.url + "/mcp", http_client=http)
        async with Client(transport, mode="legacy", elicitation_callback=person) as client:
            answers = [await client.call_tool("get_account_status", {}) for _ in range(4)]
    assert not any(a.is_error for a in answers), [text_of(a) for a in answers]
    (question,) = asked
    assert question.mode == "url" and "turn on metered overage" in question.message
    assert answers[-1].structured_content is not None
    assert answers[-1].structured_content["overage"]["this_call_metered"] is True
