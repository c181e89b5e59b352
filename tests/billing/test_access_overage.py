"""Refusals past the daily quota and for a tier: what they say and which upgrade they offer. Pure."""

from __future__ import annotations

from dataclasses import replace

from billing.access import DenialCode, Links, diagnose
from billing.quota import windows
from billing.store.records import TokenState
from billing.tier_file import apply_overrides

NOW = 1_900_000_030
DAY = windows(NOW).day
PERIOD_END = NOW + 10 * 86_400
TABLE = apply_overrides({"team": {"calls_per_day": 3, "overage_usd_per_1000_calls": 100.0, "overage_cap_usd": 1}})
LINKS = Links("https://k.test/pricing", "https://k.test/portal", "help@k.test", tiers=TABLE, overage_sold=True)
TEAM = TokenState("tok", "usr", "a@k.test", "sub_1", "stripe", "sub_1", "cus_1", "team", "active", PERIOD_END,
                  False, None, NOW - 100, NOW + 86_400, None, None, None, 0, DAY, 3)


def test_a_tier_refusal_offers_the_tier_the_tool_needs() -> None:
    denial = diagnose(replace(TEAM, tier="personal"), tool="monitor_wallet", now=NOW, links=LINKS)
    assert denial.code == DenialCode.TIER_REQUIRED and denial.upgrade_to == "team"


def test_a_full_day_without_overage_offers_it_and_the_next_tier() -> None:
    denial = diagnose(TEAM, tool="get_account_status", now=NOW, links=LINKS)
    assert denial.code == DenialCode.DAILY_QUOTA_EXHAUSTED and denial.upgrade_to == "enterprise"
    assert "turn on metered overage ($100.00 per 1,000 extra calls)" in denial.message
    # Stripe's portal cannot add a second item to a subscription: the refusal never sends people there for it.
    assert "help@k.test" in denial.message and "in the billing portal" not in denial.message


def test_with_overage_on_a_full_day_is_no_refusal_until_the_cap() -> None:
    opted_in = replace(TEAM, overage_item_id="si_1", overage_period=PERIOD_END, overage_count=9)
    assert diagnose(opted_in, tool="get_account_status", now=NOW, links=LINKS).code == DenialCode.RETRY
    capped = diagnose(replace(opted_in, overage_count=10), tool="get_account_status", now=NOW, links=LINKS)
    assert capped.code == DenialCode.OVERAGE_CAP_REACHED and capped.upgrade_to == "enterprise"
    assert "spend cap of $1.00" in capped.message and "10 overage calls" in capped.message


def test_a_customer_lowered_cap_says_it_can_be_raised_again() -> None:
    lowered = replace(TEAM, overage_item_id="si_1", overage_cap_cents=50, overage_period=PERIOD_END, overage_count=5)
    denial = diagnose(lowered, tool="get_account_status", now=NOW, links=LINKS)
    assert denial.code == DenialCode.OVERAGE_CAP_REACHED and "raise your cap" in denial.message


def test_the_top_tier_is_offered_no_upgrade() -> None:
    top = replace(TEAM, tier="enterprise", day_count=100_000)
    denial = diagnose(top, tool="get_account_status", now=NOW, links=LINKS)
    assert denial.code == DenialCode.DAILY_QUOTA_EXHAUSTED and denial.upgrade_to is None
