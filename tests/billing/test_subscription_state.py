"""Stripe objects of either API version → our state, and the ordering decisions. Pure, no servers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from billing.config import BillingConfig
from billing.subscription_state import (
    SubscriptionRow,
    ends_access,
    is_stale,
    lifecycle_rank,
    next_subscription_state,
    parse_checkout_session,
    parse_invoice,
    parse_subscription,
    payment_state_for,
    provisional_state,
)
from tests.support import DATA

PERSONAL = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM = "price_1PgafmB7WZ01zgkW02Hf9z6c"
CONFIG = BillingConfig("http://127.0.0.1:8000", prices={"personal": PERSONAL, "team": TEAM})


def event_object(name: str) -> dict[str, Any]:
    event = json.loads((DATA / "stripe" / "events" / f"{name}.json").read_text())
    return copy.deepcopy(event["data"]["object"])


def row(**changes: Any) -> SubscriptionRow:
    values: dict[str, Any] = dict(subscription_id="sub_1", user_id="usr_1", tier="personal", status="active",
                                  current_period_end=2_000, cancel_at_period_end=False, payment_state=None,
                                  last_event_created=100, payment_event_created=None)
    return SubscriptionRow(**{**values, **changes})


def test_a_current_api_subscription_reads_tier_and_period_from_its_items() -> None:
    snapshot = parse_subscription(event_object("customer.subscription.updated"), CONFIG)

    assert snapshot.subscription_id == "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    assert snapshot.customer_id == "cus_QXg1o8vcGmoR32"
    assert (snapshot.status, snapshot.tier, snapshot.price_id) == ("active", "team", TEAM)
    assert snapshot.current_period_end == 1724632454
    assert snapshot.cancel_at_period_end is False


def test_an_old_api_subscription_with_only_a_plan_and_a_top_level_period_is_understood() -> None:
    subscription = {
        "id": "sub_old", "object": "subscription", "status": "trialing", "customer": {"id": "cus_old"},
        "plan": {"id": PERSONAL}, "current_period_end": 1_700_000_000, "cancel_at_period_end": True,
        "items": {"data": [{"id": "si_1", "plan": {"id": PERSONAL}}]},
    }

    snapshot = parse_subscription(subscription, CONFIG)

    assert (snapshot.customer_id, snapshot.tier, snapshot.current_period_end) == ("cus_old", "personal", 1_700_000_000)
    assert snapshot.cancel_at_period_end is True


def test_an_unconfigured_price_falls_back_to_metadata_tier_and_else_to_none() -> None:
    subscription = event_object("customer.subscription.created")
    subscription["items"]["data"][0]["price"]["id"] = "price_other"
    subscription["items"]["data"][0]["plan"]["id"] = "price_other"

    assert parse_subscription(subscription, CONFIG).tier is None
    subscription["metadata"] = {"tier": "enterprise"}
    assert parse_subscription(subscription, CONFIG).tier == "enterprise"
    subscription["metadata"] = {"tier": "platinum"}
    assert parse_subscription(subscription, CONFIG).tier is None


def test_a_subscription_without_an_id_is_refused() -> None:
    with pytest.raises(ValueError, match="no id"):
        parse_subscription({"object": "subscription", "status": "active"}, CONFIG)


def test_a_checkout_session_takes_its_tier_from_metadata_and_its_email_from_the_details() -> None:
    session = parse_checkout_session(event_object("checkout.session.completed"), CONFIG)

    assert session.mode == "subscription"
    assert session.subscription_id == "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    assert (session.email, session.tier, session.provisional_status) == ("example@example.com", "personal", "active")


def test_a_checkout_session_line_item_price_wins_over_metadata() -> None:
    obj = event_object("checkout.session.completed")
    obj["line_items"] = {"data": [{"price": {"id": TEAM}}]}
    obj["payment_status"] = "unpaid"

    session = parse_checkout_session(obj, CONFIG)

    assert (session.tier, session.provisional_status) == ("team", "incomplete")


def test_an_invoice_finds_its_subscription_under_parent_or_top_level() -> None:
    current = parse_invoice(event_object("invoice.payment_failed"), CONFIG)
    old = parse_invoice({"id": "in_old", "subscription": "sub_old", "customer": "cus_old",
                         "lines": {"data": [{"plan": {"id": PERSONAL}}]}}, CONFIG)

    assert (current.subscription_id, current.tier, current.email) == (
        "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw", "personal", "example@example.com")
    assert (old.subscription_id, old.tier) == ("sub_old", "personal")


def test_an_older_event_is_stale_and_one_of_the_same_second_is_stale_only_if_earlier_in_the_lifecycle() -> None:
    created, updated, deleted = (lifecycle_rank(f"customer.subscription.{name}") for name in
                                 ("created", "updated", "deleted"))
    assert (created, updated, deleted) == (0, 1, 2) and lifecycle_rank("invoice.paid") is None
    assert is_stale(99, 100) and not is_stale(101, 100, rank=created, last_rank=deleted)
    assert not is_stale(1, None)
    assert is_stale(100, 100, rank=created, last_rank=updated)
    assert not is_stale(100, 100, rank=updated, last_rank=created)
    assert not is_stale(100, 100, rank=updated, last_rank=updated)  # same rank: the later arrival wins
    assert not is_stale(100, 100, rank=created, last_rank=None)  # rows written before ranks were kept


def test_a_newer_event_sets_the_state_and_its_created_time() -> None:
    snapshot = parse_subscription(event_object("customer.subscription.updated"), CONFIG)

    state = next_subscription_state(row(), snapshot, 150)

    assert state is not None
    assert (state.tier, state.status, state.last_event_created) == ("team", "active", 150)


def test_an_older_event_changes_nothing() -> None:
    snapshot = parse_subscription(event_object("customer.subscription.updated"), CONFIG)

    assert next_subscription_state(row(last_event_created=200), snapshot, 150) is None


def test_a_canceled_subscription_is_never_revived() -> None:
    snapshot = parse_subscription(event_object("customer.subscription.updated"), CONFIG)

    assert next_subscription_state(row(status="canceled", last_event_created=100), snapshot, 500) is None


def test_an_unknown_price_keeps_the_stored_tier() -> None:
    obj = event_object("customer.subscription.updated")
    obj["items"]["data"][0]["price"]["id"] = obj["items"]["data"][0]["plan"]["id"] = "price_other"

    state = next_subscription_state(row(tier="team"), parse_subscription(obj, CONFIG), 150)

    assert state is not None and state.tier == "team"
    assert next_subscription_state(None, parse_subscription(obj, CONFIG), 150) is None


def test_a_provisional_state_is_written_only_over_nothing_or_another_provisional_state() -> None:
    assert provisional_state(None, "personal", "active") is not None
    assert provisional_state(row(last_event_created=None, tier="team"), None, "active").tier == "team"
    assert provisional_state(row(last_event_created=5), "personal", "active") is None
    assert provisional_state(None, None, "active") is None


def test_invoice_outcomes_set_or_clear_the_past_due_flag_and_final_statuses_end_access() -> None:
    assert payment_state_for("invoice.payment_failed") == "past_due"
    assert payment_state_for("invoice.payment_succeeded") == "paid"
    assert ends_access("canceled") and ends_access("incomplete_expired")
    assert not ends_access("past_due") and not ends_access("unpaid")
