"""The comparison of one subscription with its stored row, and the transition a read goes through. Pure."""

from __future__ import annotations

import dataclasses

import pytest

from billing.reconcile.drift import DriftKind, compare, unknown_to_stripe
from billing.store.records import StoredSubscription
from billing.subscription_state import (
    CustomerSnapshot,
    SubscriptionRow,
    SubscriptionSnapshot,
    SubscriptionState,
    next_subscription_state,
)

NOW = 1_900_000_000
K = DriftKind
STRIPE = SubscriptionSnapshot("sub_1", "cus_1", "active", "team", "price_team", NOW + 86_400, False)
CUSTOMER = CustomerSnapshot("cus_1", "ann@example.com", "Ann")
ROW = SubscriptionRow("sub_1", "usr_1", "team", "active", NOW + 86_400, False, None, NOW - 60, None)


def stored(**changes: object) -> StoredSubscription:
    return StoredSubscription(dataclasses.replace(ROW, **changes), "ann@example.com", "cus_1", NOW - 99, True)


@pytest.mark.parametrize(("stripe", "row", "expected"), [
    (STRIPE, stored(), ()),
    (STRIPE, None, (K.MISSING_HERE, K.ENTITLED_IN_STRIPE)),
    (dataclasses.replace(STRIPE, status="canceled"), None, (K.MISSING_HERE,)),
    (dataclasses.replace(STRIPE, status="canceled"), stored(), (K.ENDED_IN_STRIPE, K.STATUS)),
    (STRIPE, stored(status="canceled"), (K.ENTITLED_IN_STRIPE, K.STATUS)),
    (STRIPE, stored(status="incomplete"), (K.ENTITLED_IN_STRIPE, K.STATUS)),
    (dataclasses.replace(STRIPE, status="past_due"), stored(), (K.STATUS,)),
    (dataclasses.replace(STRIPE, tier="personal"), stored(), (K.TIER,)),
    (dataclasses.replace(STRIPE, cancel_at_period_end=True), stored(), (K.CANCEL_AT_PERIOD_END,)),
    (dataclasses.replace(STRIPE, current_period_end=NOW + 99), stored(), (K.PERIOD_END,)),
    (dataclasses.replace(STRIPE, tier=None), stored(), (K.UNKNOWN_PRICE,)),
    (dataclasses.replace(STRIPE, tier=None), None, ()),  # not an MCP subscription at all
    # cancelled at the end of a period that is over: no access, whatever the status says
    (dataclasses.replace(STRIPE, cancel_at_period_end=True, current_period_end=NOW - 1),
     stored(current_period_end=NOW - 1), (K.ENDED_IN_STRIPE, K.CANCEL_AT_PERIOD_END)),
], ids=lambda value: "" if not isinstance(value, tuple) else "-".join(value) or "agree")
def test_each_difference_is_its_own_kind(stripe: SubscriptionSnapshot, row: StoredSubscription | None,
                                         expected: tuple[DriftKind, ...]) -> None:
    assert compare(stripe, CUSTOMER, row, NOW) == expected


def test_email_and_delivery_drift_need_the_customers_email() -> None:
    renamed = CustomerSnapshot("cus_1", "ann.new@example.com", None)
    assert compare(STRIPE, renamed, stored(), NOW) == (K.EMAIL,)
    never_sent = dataclasses.replace(stored(), delivered=False)
    assert compare(STRIPE, CUSTOMER, never_sent, NOW) == (K.NOT_DELIVERED,)
    assert compare(STRIPE, None, never_sent, NOW) == ()
    assert compare(STRIPE, dataclasses.replace(CUSTOMER, deleted=True), never_sent, NOW) == ()


def test_a_stored_subscription_unknown_to_stripe_is_drift_until_it_has_ended() -> None:
    finding = unknown_to_stripe(stored(), NOW)
    assert finding is not None and finding.kinds == (K.UNKNOWN_TO_STRIPE,) and finding.stripe_object is None
    assert unknown_to_stripe(stored(status="canceled"), NOW) is None


def test_a_read_wins_over_older_events_but_not_over_one_of_its_own_second_or_later() -> None:
    personal = dataclasses.replace(STRIPE, tier="personal")
    assert next_subscription_state(ROW, personal, NOW - 59, read=True) == SubscriptionState(
        "personal", "active", NOW + 86_400, False, NOW - 59)
    assert next_subscription_state(ROW, personal, NOW - 60, read=True) is None  # the event's own second
    assert next_subscription_state(ROW, personal, NOW - 61, read=True) is None
    provisional = dataclasses.replace(ROW, last_event_created=None)
    assert next_subscription_state(provisional, personal, NOW - 61, read=True) is not None


def test_a_read_can_bring_back_what_the_store_wrongly_ended_an_event_cannot() -> None:
    ended = dataclasses.replace(ROW, status="canceled")
    assert next_subscription_state(ended, STRIPE, NOW, read=False) is None
    state = next_subscription_state(ended, STRIPE, NOW, read=True)
    assert state is not None and state.status == "active"
