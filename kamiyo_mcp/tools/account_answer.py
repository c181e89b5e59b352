"""The typed answer of get_account_status: what `billing.account.account_status` reports (pure)."""

from __future__ import annotations

from pydantic import Field

from kamiyo_mcp.intel.answer_base import Answer

# Booleans and counts are answers even when false or zero: they are required (always sent); only
# fields that can be unknown are optional, and left out when they are.


class Subscription(Answer):
    """The subscription (or operator grant) behind the token."""

    kind: str = Field(description="stripe (a paid subscription) or operator_grant (issued by the operator).")
    status: str = Field(description="The subscription's status, e.g. active, trialing, past_due, canceled.")
    access: bool = Field(description="Whether calls are allowed now.")
    past_due: bool = Field(description="True when a payment is overdue.")
    cancel_at_period_end: bool = Field(description="True when it ends at the period's end.")
    current_period_end: str | None = Field(default=None, description="End of the paid period (ISO 8601, UTC).")


class TokenState(Answer):
    """The token this call was made with."""

    token_id: str = Field(description="The token's id (not the token).")
    expires_at: str | None = Field(default=None, description="When it expires (ISO 8601, UTC).")
    revoked: bool = Field(description="True when it was revoked.")
    revoked_reason: str | None = Field(default=None, description="Why, when it was revoked.")


class Usage(Answer):
    """Calls used and left, counting this one."""

    calls_this_minute: int = Field(description="Calls in the current UTC minute.")
    calls_left_this_minute: int = Field(description="Calls left in it.")
    minute_resets_at: str = Field(description="When the minute window resets (ISO 8601, UTC).")
    calls_today: int = Field(description="Calls in the current UTC day.")
    calls_left_today: int = Field(description="Calls left today.")
    day_resets_at: str = Field(description="When the day window resets (ISO 8601, UTC).")


class Limits(Answer):
    """What the tier allows."""

    calls_per_minute: int = Field(description="Calls per UTC minute.")
    calls_per_day: int = Field(description="Calls per UTC day.")
    search_results_per_call: int = Field(description="Results one search may page through.")
    monitor_wallet: bool = Field(description="Whether monitor_wallet is included.")
    risk_detail: str = Field(description="basic, summary or full risk assessments.")


class Overage(Answer):
    """Calls beyond the day's quota, billed per 1,000 (metered overage), when the tier offers it."""

    available_on_tier: bool = Field(description="Whether this tier can buy overage.")
    enabled: bool = Field(description="Whether this subscription has it on.")
    price_per_1000_calls_usd: float = Field(description="Price per 1,000 overage calls (USD).")
    calls_this_period: int = Field(description="Overage calls in the current billing period.")
    estimated_cost_usd: float = Field(description="Their estimated cost so far.")
    cap_usd: float = Field(description="The most overage may cost this period.")
    cap_is_customer_set: bool = Field(description="Whether the customer lowered the cap.")
    cap_left_usd: float = Field(description="What is left under the cap.")
    calls_left_under_cap: int = Field(description="Overage calls left under the cap.")
    cap_reached: bool = Field(description="Whether the cap stops further overage calls.")
    this_call_metered: bool = Field(description="Whether this call was an overage call.")
    period_ends_at: str | None = Field(default=None, description="When the billing period ends (ISO 8601, UTC).")


class AccountStatus(Answer):
    """The caller's account: tier, subscription, token, usage, limits and where to go next."""

    tier: str = Field(description="personal, team or enterprise.")
    email: str | None = Field(default=None, description="The account's email.")
    subscription: Subscription = Field(description="The subscription or grant.")
    token: TokenState = Field(description="The token of this call.")
    usage: Usage = Field(description="Calls used and left.")
    limits: Limits = Field(description="The tier's limits.")
    overage: Overage | None = Field(default=None, description="Metered overage beyond the day's quota.")
    upgrade_url: str | None = Field(default=None, description="Where to upgrade, when a higher tier exists.")
    manage_billing: str | None = Field(default=None, description="Where to manage billing, when there is a portal.")
    support: str | None = Field(default=None, description="Whom to write to for help.")


def render_account(a: AccountStatus) -> str:
    """A few lines: tier and standing, calls used and left, and where to go next."""
    u, s = a.usage, a.subscription
    kind = "operator grant" if s.kind == "operator_grant" else "Stripe subscription"
    lines = [f"{a.tier.capitalize()} tier, {kind} {s.status}; calls {'allowed' if s.access else 'refused'}"
             + (f", paid until {s.current_period_end}" if s.current_period_end else "")
             + (", ends at the period's end" if s.cancel_at_period_end else "") + ".",
             f"Calls: {u.calls_this_minute}/{a.limits.calls_per_minute} this minute (resets {u.minute_resets_at}), "
             f"{u.calls_today:,}/{a.limits.calls_per_day:,} today (resets {u.day_resets_at}).",
             f"Token {a.token.token_id}" + (f" expires {a.token.expires_at}" if a.token.expires_at else "")
             + (f", revoked ({a.token.revoked_reason})" if a.token.revoked else "") + "."]
    lines += [f"{label}: {value}" for label, value in (("Upgrade", a.upgrade_url), ("Billing", a.manage_billing),
                                                        ("Help", a.support)) if value]
    return "\n".join(lines)
