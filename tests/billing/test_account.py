"""`get_account_status`'s view of a grant, and the ways out it shows: only those that exist."""

from __future__ import annotations

from dataclasses import replace

from billing.access import Denial, Grant, Links, diagnose
from billing.account import account_status
from billing.store.records import TokenState
from billing.tiers import TIERS

NOW = 1_900_000_030
LINKS = Links(pricing_url="https://kamiyo.test/pricing",
              portal_endpoint="https://kamiyo.test/api/billing/create-portal-session",
              support_email="help@kamiyo.test")
GRANT_STATE = TokenState(
    token_id="tok_1", user_id="usr_1", email="a@example.com", subscription_id="grant_1", kind="grant",
    stripe_subscription_id=None, stripe_customer_id=None, tier="team", status="active", current_period_end=None,
    cancel_at_period_end=False, payment_state=None, created_at=NOW - 100, expires_at=NOW + 86_400,
    revoked_at=None, revoked_reason=None, minute_start=None, minute_count=0, day_start=None, day_count=0,
)
STRIPE_STATE = replace(GRANT_STATE, subscription_id="sub_1", kind="stripe", stripe_subscription_id="sub_1",
                       stripe_customer_id="cus_1", current_period_end=NOW + 3600)


def grant(state: TokenState, minute_used: int = 3, day_used: int = 40) -> Grant:
    return Grant(state.subscription_id, TIERS[state.tier], minute_used, day_used, NOW, state)


def test_the_status_is_a_view_of_the_grant_after_this_call() -> None:
    status = account_status(grant(STRIPE_STATE), LINKS)
    assert status["tier"] == "team" and status["email"] == "a@example.com"
    assert status["usage"] == {
        "calls_this_minute": 3, "calls_left_this_minute": 117, "minute_resets_at": "2030-03-17T17:48:00Z",
        "calls_today": 40, "calls_left_today": 9_960, "day_resets_at": "2030-03-18T00:00:00Z",
    }
    assert status["subscription"]["kind"] == "stripe" and status["subscription"]["access"] is True  # type: ignore[index]
    assert status["token"] == {"token_id": "tok_1", "expires_at": "2030-03-18T17:47:10Z", "revoked": False,
                               "revoked_reason": None}


def test_a_stripe_subscription_below_the_top_tier_is_offered_an_upgrade_and_its_billing_portal() -> None:
    status = account_status(grant(STRIPE_STATE), LINKS)
    assert status["upgrade_url"] == "https://kamiyo.test/pricing"
    assert "create-portal-session" in str(status["manage_billing"])


def test_the_top_tier_is_offered_no_upgrade() -> None:
    status = account_status(grant(replace(STRIPE_STATE, tier="enterprise")), LINKS)
    assert status["upgrade_url"] is None and status["manage_billing"] is not None


def test_an_operator_grant_is_offered_no_billing_portal_but_support() -> None:
    status = account_status(grant(GRANT_STATE), LINKS)
    assert status["manage_billing"] is None and status["support"] == "help@kamiyo.test"
    refused = diagnose(replace(GRANT_STATE, tier="personal"), tool="monitor_wallet", now=NOW, links=LINKS)
    assert isinstance(refused, Denial) and "portal" not in refused.message
    assert "help@kamiyo.test" in refused.message and refused.tier_needed == "team"


def test_a_quota_refusal_on_the_top_tier_points_to_support_not_an_upgrade() -> None:
    full = replace(STRIPE_STATE, tier="enterprise", minute_start=NOW - NOW % 60, minute_count=600)
    refused = diagnose(full, tool="get_account_status", now=NOW, links=LINKS)
    assert refused.code == "rate_limited" and "upgrade" not in refused.message
    assert "help@kamiyo.test" in refused.message
