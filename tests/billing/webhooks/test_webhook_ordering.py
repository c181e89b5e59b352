"""Out of order, twice and concurrently: the same final state, applied exactly once."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import httpx
from starlette.applications import Starlette

from billing.http.webhooks import PATH, webhook_routes
from kamiyo_mcp.runtime import Runtime
from tests.billing.webhooks.webhook_support import (
    SUBSCRIPTION,
    TEAM_PRICE,
    Webhooks,
    load_event,
    rewrite_ids,
    signed_headers,
)

LIFECYCLE = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "customer.subscription.deleted",
)
T0 = 1_800_000_000


SUBSCRIPTION_EVENTS = tuple(f"customer.subscription.{name}" for name in ("created", "updated", "deleted"))


def lifecycle(suffix: str, *, same_second: bool = False, names: tuple[str, ...] = LIFECYCLE) -> list[bytes]:
    """The lifecycle of subscription `..._{suffix}`, in order: one event per second, or (`same_second`)
    its subscription events all created in the same second, as Stripe sends a fast lifecycle."""
    bodies = []
    for offset, name in enumerate(names):
        event = rewrite_ids(load_event(name), suffix)
        event["created"] = T0 if same_second and name in SUBSCRIPTION_EVENTS else T0 + offset
        bodies.append(json.dumps(event).encode())
    return bodies


def final_state(webhooks: Webhooks, suffix: str) -> dict[str, Any]:
    subscription_id = f"{SUBSCRIPTION}_{suffix}"
    now = int(time.time())
    subscriptions = webhooks.rows(
        "SELECT s.tier, s.status, s.current_period_end, s.cancel_at_period_end, s.payment_state,"
        " s.last_event_created, s.payment_event_created, c.email, c.stripe_customer_id"
        " FROM subscriptions s JOIN customers c USING (user_id) WHERE s.subscription_id = ?", (subscription_id,))
    customer_id = subscriptions[0][-1] if subscriptions else ""
    customers = webhooks.rows("SELECT COUNT(*) FROM customers WHERE stripe_customer_id = ?", (customer_id,))
    claims = webhooks.rows(
        "SELECT kind, redeemed_at IS NULL AND expires_at > ? FROM claims WHERE subscription_id = ? ORDER BY kind",
        (now, subscription_id))
    events = webhooks.rows(
        "SELECT status, attempts FROM stripe_events WHERE event_id LIKE ? ORDER BY event_id", (f"%_{suffix}",))
    state = {"subscriptions": subscriptions, "customers": customers, "claims": claims, "events": events}
    return json.loads(json.dumps(state).replace(f"_{suffix}", "_SUFFIX"))


async def permutations_differing_from_the_in_order_state(webhooks: Webhooks, names: tuple[str, ...], *,
                                                         same_second: bool, tag: str) -> list[object]:
    """Deliver `names` in order, then in every other order with one event delivered twice; the orders
    whose final state differs from the in-order one."""
    for body in lifecycle(f"{tag}in", same_second=same_second, names=names):
        assert (await webhooks.post(body)).status_code == 200
    expected = final_state(webhooks, f"{tag}in")
    differing: list[object] = []
    count = len(names)
    for number, order in enumerate(itertools.permutations(range(count))):
        suffix = f"{tag}{number}"
        bodies = lifecycle(suffix, same_second=same_second, names=names)
        sequence = [bodies[i] for i in order]
        sequence.insert(number % (count + 1), bodies[order[number % count]])  # one event delivered twice
        for body in sequence:
            response = await webhooks.post(body)
            assert response.status_code == 200, response.text
        if final_state(webhooks, suffix) != expected:
            differing.append((order, final_state(webhooks, suffix)))
    return differing


async def test_every_permutation_of_a_lifecycle_with_a_duplicate_ends_in_the_in_order_state(
        webhooks: Webhooks) -> None:
    for body in lifecycle("inorder"):
        assert (await webhooks.post(body)).status_code == 200
    expected = final_state(webhooks, "inorder")
    assert expected["subscriptions"][0][:5] == ["team", "canceled", expected["subscriptions"][0][2], 0, "paid"]
    assert expected["claims"] == [["checkout_session", 0], ["email_code", 0]]
    assert expected["events"] == [["processed", 1]] * 6

    assert await permutations_differing_from_the_in_order_state(webhooks, LIFECYCLE, same_second=False,
                                                                tag="p") == []


async def test_subscription_events_of_the_same_second_apply_in_lifecycle_order_whatever_the_arrival(
        webhooks: Webhooks) -> None:
    # Without the deletion, which is final anyway: created (personal) and updated (team) in one second.
    names = tuple(name for name in LIFECYCLE if name != "customer.subscription.deleted")
    for body in lifecycle("same", same_second=True, names=names):
        assert (await webhooks.post(body)).status_code == 200
    assert final_state(webhooks, "same")["subscriptions"][0][:2] == ["team", "active"]

    assert await permutations_differing_from_the_in_order_state(webhooks, names, same_second=True, tag="s") == []


async def test_an_update_then_a_creation_of_the_same_second_leave_the_updated_tier(webhooks: Webhooks) -> None:
    _, created, updated = lifecycle("revert", same_second=True, names=LIFECYCLE[:3])

    await webhooks.post(updated)  # team
    answer = await webhooks.post(created)  # personal, the same second, arriving late

    assert answer.json()["message"].startswith("stale"), answer.text
    assert final_state(webhooks, "revert")["subscriptions"][0][:2] == ["team", "active"]


async def test_checkout_and_subscription_created_racing_make_one_customer_subscription_and_claim(
        webhooks: Webhooks) -> None:
    for round_number in range(10):
        suffix = f"race{round_number}"
        checkout, created = lifecycle(suffix)[:2]
        if round_number % 2:
            checkout, created = created, checkout

        answers = await asyncio.gather(webhooks.post(checkout), webhooks.post(created))

        assert [a.status_code for a in answers] == [200, 200]
        state = final_state(webhooks, suffix)
        assert state["customers"] == [[1]]
        assert len(state["subscriptions"]) == 1
        assert state["subscriptions"][0][:2] == ["personal", "active"]
        assert state["subscriptions"][0][7] == "example@example.com"
        assert state["claims"] == [["checkout_session", 1], ["email_code", 1]]


async def test_fifty_concurrent_deliveries_of_one_event_apply_it_once(webhooks: Webhooks) -> None:
    body = lifecycle("fifty")[1]

    answers = await asyncio.gather(*(webhooks.post(body) for _ in range(50)))

    statuses = sorted(a.json()["status"] for a in answers)
    assert {a.status_code for a in answers} == {200}
    assert statuses == ["duplicate"] * 49 + ["processed"]
    assert webhooks.rows("SELECT status, attempts FROM stripe_events") == [("processed", 1)]
    assert webhooks.rows("SELECT COUNT(*) FROM audit_log WHERE subject = ?", (f"{SUBSCRIPTION}_fifty",)) == [(1,)]


async def test_an_older_update_never_overwrites_a_newer_one(webhooks: Webhooks) -> None:
    _, created, updated, *_ = lifecycle("stale")

    await webhooks.post(updated)
    answer = await webhooks.post(created)

    assert answer.json()["status"] == "processed" and answer.json()["message"].startswith("stale")
    assert final_state(webhooks, "stale")["subscriptions"][0][:2] == ["team", "active"]


async def test_a_deleted_subscription_is_not_brought_back_by_a_later_update(webhooks: Webhooks) -> None:
    _, created, updated, _, _, deleted = lifecycle("final")
    late_update = json.loads(updated)
    late_update["id"] += "_late"
    late_update["created"] = T0 + 100

    for body in (created, deleted, json.dumps(late_update).encode()):
        await webhooks.post(body)

    assert final_state(webhooks, "final")["subscriptions"][0][:2] == ["team", "canceled"]


async def test_subscription_items_with_only_a_plan_old_api_are_understood(webhooks: Webhooks) -> None:
    event = rewrite_ids(load_event("customer.subscription.updated"), "plan")
    subscription = event["data"]["object"]
    period_end = subscription["items"]["data"][0].pop("current_period_end")
    del subscription["items"]["data"][0]["price"]
    subscription["current_period_end"] = period_end
    event["api_version"] = "2017-08-15"

    await webhooks.post(event)

    assert subscription["items"]["data"][0]["plan"]["id"] == TEAM_PRICE
    assert final_state(webhooks, "plan")["subscriptions"][0][:3] == ["team", "active", period_end]


async def test_two_stores_on_one_file_racing_on_one_event_apply_it_once(webhooks: Webhooks) -> None:
    """Two store instances (separate connections and locks, as two processes have) share one file."""
    settings = webhooks.runtime.settings
    async with Runtime(settings).opened() as other:
        app = Starlette(routes=webhook_routes(lambda: other.store, settings.billing))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://other") as client:
            checkout, created = lifecycle("two")[:2]

            def post_other(body: bytes) -> Any:
                return client.post(PATH, content=body, headers=signed_headers(body))

            answers = await asyncio.gather(*(post(body) for _ in range(10)
                                             for body in (checkout, created)
                                             for post in (webhooks.post, post_other)))

    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 38 + ["processed"] * 2
    state = final_state(webhooks, "two")
    assert state["customers"] == [[1]] and len(state["subscriptions"]) == 1
    assert state["claims"] == [["checkout_session", 1], ["email_code", 1]]
