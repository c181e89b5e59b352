"""A failure inside processing rolls everything back, answers 500, and a retry or replay completes it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from billing.webhooks.context import Applied, EventContext
from billing.webhooks.registry import HandlerRegistry, default_registry
from billing.webhooks.subscriptions import on_subscription_event
from tests.billing.webhooks.webhook_support import SUBSCRIPTION, Webhooks, load_event


@dataclass
class Fault:
    armed: bool = True


class InjectedFault(RuntimeError):
    pass


@pytest.fixture
def fault() -> Fault:
    return Fault()


@pytest.fixture
def registry(fault: Fault) -> HandlerRegistry:
    """The real handlers, with checkout's made to fail after all of its writes while `fault` is armed."""
    registry = default_registry()
    real = registry.handler_for("checkout.session.completed")
    assert real is not None

    async def write_then_fail(ctx: EventContext) -> Applied:
        applied = await real(ctx)
        if fault.armed:
            raise InjectedFault("injected after the first writes")
        return applied

    registry.register("checkout.session.completed", write_then_fail, replace=True)
    return registry


def billing_rows(webhooks: Webhooks) -> dict[str, int]:
    return {table: webhooks.rows(f"SELECT COUNT(*) FROM {table}")[0][0]
            for table in ("customers", "subscriptions", "claims", "audit_log")}


async def test_a_fault_after_the_first_write_answers_500_and_leaves_no_partial_rows(
        webhooks: Webhooks, fault: Fault) -> None:
    response = await webhooks.post_fixture("checkout.session.completed")

    body = response.json()
    assert response.status_code == 500
    assert body["error"]["code"] == "webhook_failed" and "retried" in body["error"]["message"]
    assert body["event_id"] == load_event("checkout.session.completed")["id"]
    assert billing_rows(webhooks) == {"customers": 0, "subscriptions": 0, "claims": 0, "audit_log": 0}
    [(status, attempts, error)] = webhooks.rows("SELECT status, attempts, last_error FROM stripe_events")
    assert (status, attempts) == ("failed", 1)
    assert "InjectedFault" in error


async def test_stripe_retrying_a_failed_event_counts_attempts_and_then_completes_it(
        webhooks: Webhooks, fault: Fault) -> None:
    assert (await webhooks.post_fixture("checkout.session.completed")).status_code == 500
    assert (await webhooks.post_fixture("checkout.session.completed")).status_code == 500
    fault.armed = False

    retry = await webhooks.post_fixture("checkout.session.completed")

    assert retry.status_code == 200 and retry.json()["status"] == "processed"
    assert webhooks.rows("SELECT status, attempts, last_error FROM stripe_events") == [("processed", 3, None)]
    assert billing_rows(webhooks) == {"customers": 1, "subscriptions": 1, "claims": 2, "audit_log": 1}


async def test_a_failed_event_is_completed_by_a_replay_through_the_same_processor(
        webhooks: Webhooks, fault: Fault, registry: HandlerRegistry) -> None:
    from billing.webhooks.processor import WebhookProcessor

    await webhooks.post_fixture("checkout.session.completed")
    fault.armed = False
    processor = WebhookProcessor(webhooks.runtime.store, webhooks.runtime.settings.billing, registry)

    first = await processor.replay_failed()
    again = await processor.replay(load_event("checkout.session.completed")["id"])

    assert [o.status for o in first] == ["processed"]
    assert again.status == "duplicate"
    assert webhooks.rows("SELECT subscription_id, status FROM subscriptions") == [(SUBSCRIPTION, "active")]
    assert billing_rows(webhooks)["claims"] == 2  # the checkout session's and the emailed one


async def test_a_failing_handler_does_not_disturb_other_events(webhooks: Webhooks, fault: Fault) -> None:
    await webhooks.post_fixture("checkout.session.completed")

    created = await webhooks.post_fixture("customer.subscription.created")

    assert created.json()["status"] == "processed"
    assert webhooks.rows("SELECT status FROM subscriptions") == [("active",)]


def test_the_default_registry_handles_exactly_the_documented_event_types() -> None:
    assert default_registry().event_types == (
        "checkout.session.completed", "customer.created", "customer.subscription.created",
        "customer.subscription.deleted", "customer.subscription.updated", "customer.updated",
        "invoice.payment_failed", "invoice.payment_succeeded",
    )
    assert default_registry().handler_for("customer.subscription.deleted") is on_subscription_event
    with pytest.raises(ValueError, match="already has a handler"):
        default_registry().register("customer.updated", on_subscription_event)
