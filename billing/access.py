"""Who may call what, now: grants, denials and the reasons behind them. Pure, no I/O.

The store admits a call in one atomic statement and, in the same trip, reads the token's state
(see store/call_sql.py); when the call is not admitted, `diagnose` reads that state and says why,
in words a user can act on, pointing only at ways out that exist for this subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from billing.overage import cap_calls, effective_cap_cents
from billing.quota import windows
from billing.tiers import DEFAULT_TIERS, Tier, TierTable

if TYPE_CHECKING:
    from billing.store.records import TokenState

ENTITLED_STATUSES = frozenset({"active", "trialing", "past_due"})


class DenialCode(StrEnum):
    INVALID_TOKEN = "invalid_token"
    TOKEN_ROTATED = "token_rotated"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    SUBSCRIPTION_ENDED = "subscription_ended"
    PAYMENT_REQUIRED = "payment_required"
    TIER_REQUIRED = "tier_required"
    DAILY_QUOTA_EXHAUSTED = "daily_quota_exhausted"
    OVERAGE_CAP_REACHED = "overage_cap_reached"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"


# Refusals of a token that no longer authenticates at all (over HTTP: a 401 challenge), with the
# short reason the challenge gives.
UNAUTHENTICATED_REASONS = {
    DenialCode.INVALID_TOKEN: "the token is not recognised",
    DenialCode.TOKEN_ROTATED: "the token was replaced by a newer one",
    DenialCode.TOKEN_EXPIRED: "the token has expired",
}
UNAUTHENTICATED = frozenset(UNAUTHENTICATED_REASONS)


@dataclass(frozen=True, slots=True)
class Grant:
    """The call is admitted and counted: the subscription's counts after this call (`decided_at` places
    them in their windows), and, for a call that shows the account, the token's state as the deciding
    trip read it."""

    subscription_id: str
    tier: Tier
    minute_used: int
    day_used: int
    decided_at: int
    state: TokenState | None = None
    # The call's id (its meter event's identifier), whether it is billed as overage (past the daily
    # quota), and the subscription's overage calls this period (this one included) against its cap.
    call_id: str = ""
    metered: bool = False
    overage_used: int = 0
    overage_limit: int = 0


@dataclass(frozen=True, slots=True)
class Denial:
    """The call is refused; `message` tells the user why and what to do.

    `http_status` is the answer where the refusal is an HTTP one; `retry_after` (seconds) and
    `tier_needed` are the machine-readable parts of the message; `upgrade_to` is the tier an upgrade
    link in the refusal would move the subscription to (a tier or quota refusal with a tier above).
    """

    code: DenialCode
    message: str
    http_status: int
    retry_after: int | None = None
    tier_needed: str | None = None
    subscription_id: str | None = None
    upgrade_to: str | None = None


@dataclass(frozen=True, slots=True)
class Links:
    """Where users go next: the pricing page, the billing portal endpoint, support."""

    pricing_url: str
    portal_endpoint: str
    support_email: str
    tiers: TierTable = DEFAULT_TIERS
    overage_sold: bool = False  # the server sells metered overage (its price and meter are configured)

    def upgrade_url(self, state: TokenState) -> str | None:
        """The pricing page, unless the subscription is already on the top tier."""
        tier = self.tiers.get(state.tier)
        return None if tier is not None and self.tiers.next_above(tier) is None else self.pricing_url

    def manage_billing(self, state: TokenState) -> str | None:
        """How to manage a Stripe subscription's billing; None when there is no Stripe billing to manage
        (an operator grant, or no Stripe customer yet: the portal would refuse)."""
        if state.kind != "stripe" or not state.stripe_customer_id:
            return None
        return f"POST {self.portal_endpoint} with this token as the bearer returns a billing-portal link"


def entitlement_ended(status: str, current_period_end: int | None, cancel_at_period_end: bool, now: int
                      ) -> str | None:
    """Why a subscription in this state grants no access now, or None when it does."""
    if status not in ENTITLED_STATUSES:
        if status == "incomplete":
            return "the payment for this subscription has not completed"
        return f"the subscription has ended (its status is {status})"
    if cancel_at_period_end and current_period_end is not None and current_period_end <= now:
        return f"the subscription was cancelled and its last period ended on {_date(current_period_end)}"
    return None


def subscription_grants_access(state: TokenState, now: int) -> bool:
    return entitlement_ended(state.status, state.current_period_end, state.cancel_at_period_end, now) is None


def account_refusal(state: TokenState | None, *, now: int, links: Links) -> Denial | None:
    """Why this token may make no call at all now (unknown, rotated, revoked, expired, subscription
    ended), or None while its account allows calls (tier and quota aside)."""
    if state is None:
        return Denial(DenialCode.INVALID_TOKEN, "This token is not recognised. Check that you pasted it whole.", 401)
    if state.revoked_at is not None:
        return _revoked(state, links)
    if state.expires_at <= now:
        return Denial(
            DenialCode.TOKEN_EXPIRED,
            f"This token expired on {_date(state.expires_at)}. If your subscription is still active, contact "
            f"{links.support_email} for a new token; otherwise subscribe again at {links.pricing_url}.",
            401, subscription_id=state.subscription_id,
        )
    if not subscription_grants_access(state, now):
        return _not_entitled(state, now, links)
    return None


def diagnose(state: TokenState | None, *, tool: str, now: int, links: Links) -> Denial:
    """Why a call that the store did not admit was refused (against the tier table of `links`)."""
    refusal = account_refusal(state, now=now, links=links)
    if refusal is not None:
        return refusal
    assert state is not None
    tiers = links.tiers
    tier = tiers.get(state.tier)
    if tier is None or not tiers.allows(tier, tool):
        return _tier_required(state, tool, links)
    current = windows(now)
    if current.day_used(state.day_start, state.day_count) >= tier.calls_per_day:
        day_refusal = _daily_quota(state, tier, now, links)
        if day_refusal is not None:
            return day_refusal
    if current.minute_used(state.minute_start, state.minute_count) >= tier.calls_per_minute:
        reset = current.minute_resets_at
        return Denial(
            DenialCode.RATE_LIMITED,
            f"The limit of {tier.calls_per_minute} calls per minute on the {tier.name} tier is "
            f"reached. It resets at {_time(reset)} (in {reset - now} s).{_more(state, links)}",
            429, retry_after=reset - now, subscription_id=state.subscription_id,
        )
    # The state changed between the refused statement and the read it was diagnosed from: a retry will tell.
    return Denial(DenialCode.RETRY, "The call could not be admitted right now; please retry.", 503, retry_after=1,
                  subscription_id=state.subscription_id)


def _daily_quota(state: TokenState, tier: Tier, now: int, links: Links) -> Denial | None:
    """The day is full: the refusal, or None while overage is on and its spend cap for the period allows more."""
    reset = windows(now).day_resets_at
    above = links.tiers.next_above(tier)
    upgrade = above.name if above is not None else None
    resets = f"It resets at {_time(reset)} (in {_duration(reset - now)})."
    if state.kind == "stripe" and state.overage_item_id is not None and tier.overage:
        cap = effective_cap_cents(tier, state.overage_cap_cents)
        period = state.current_period_end or 0
        used = state.overage_count if state.overage_period == period else 0
        if used >= cap_calls(tier, cap):
            ends = f"the billing period ends on {_date(period)}" if period else "the billing period ends"
            lower = state.overage_cap_cents is not None and state.overage_cap_cents < tier.overage_cap_usd * 100
            raise_it = ("raise your cap (you set it below the default)" if lower
                        else f"ask {links.support_email} about a higher cap")
            return Denial(
                DenialCode.OVERAGE_CAP_REACHED,
                f"The daily quota of {tier.calls_per_day:,} calls on the {tier.name} tier is used up, and this "
                f"subscription's overage spend cap of ${cap / 100:,.2f} for the billing period is reached "
                f"({used:,} overage calls), so overage is off until {ends}. {resets} To go on now, "
                f"{raise_it}{' or upgrade' if upgrade else ''}.",
                429, retry_after=reset - now, subscription_id=state.subscription_id, upgrade_to=upgrade,
            )
        return None
    overage = ""
    if state.kind == "stripe" and tier.overage and links.overage_sold:
        overage = (f" To keep working past the quota, turn on metered overage (${tier.overage_usd_per_1000_calls:,.2f} "
                   f"per 1,000 extra calls): ask {links.support_email}, or open the one-time overage link when "
                   "one is offered below (Stripe's billing portal cannot add it).")
    return Denial(
        DenialCode.DAILY_QUOTA_EXHAUSTED,
        f"The daily quota of {tier.calls_per_day:,} calls on the {tier.name} tier is used up. {resets}{overage}"
        f"{_more(state, links)}",
        429, retry_after=reset - now, subscription_id=state.subscription_id, upgrade_to=upgrade,
    )


def _tier_required(state: TokenState, tool: str, links: Links) -> Denial:
    needed = links.tiers.min_tier_for(tool)
    name = needed.name if needed else "a higher"
    if state.kind == "stripe":
        portal = links.manage_billing(state)
        how = f"Upgrade at {links.pricing_url}" + (f", or change your plan ({portal})" if portal else "")
    else:
        how = f"Ask {links.support_email} to change your grant, or subscribe at {links.pricing_url}"
    return Denial(
        DenialCode.TIER_REQUIRED,
        f"{tool} needs the {name} tier or higher; this token's tier is {state.tier}. {how}.",
        403, tier_needed=needed.name if needed else None, subscription_id=state.subscription_id,
        upgrade_to=needed.name if needed else None,
    )


def _more(state: TokenState, links: Links) -> str:
    upgrade = links.upgrade_url(state)
    return f" For higher limits, upgrade at {upgrade}." if upgrade else f" For more, contact {links.support_email}."


def _revoked(state: TokenState, links: Links) -> Denial:
    reason = state.revoked_reason or "revoked"
    if reason == "rotated":
        return Denial(DenialCode.TOKEN_ROTATED,
                      "This token was replaced by a newer one (rotated). Use the new token.", 401,
                      subscription_id=state.subscription_id)
    if reason == "subscription_ended":
        return Denial(
            DenialCode.SUBSCRIPTION_ENDED,
            f"Your KAMIYO subscription has ended, so this token no longer works. Renew at {links.pricing_url}.",
            403, subscription_id=state.subscription_id,
        )
    return Denial(
        DenialCode.TOKEN_REVOKED,
        f"This token was revoked ({reason}). Contact {links.support_email}, or subscribe at {links.pricing_url} "
        "for a new one.",
        403, subscription_id=state.subscription_id,
    )


def _not_entitled(state: TokenState, now: int, links: Links) -> Denial:
    if state.status in ENTITLED_STATUSES:  # cancelled at period end, and the period is over
        return Denial(
            DenialCode.SUBSCRIPTION_ENDED,
            f"Your subscription ended on {_date(state.current_period_end or now)}. Renew at {links.pricing_url}.",
            403, subscription_id=state.subscription_id,
        )
    if state.status in ("unpaid", "incomplete"):
        portal = links.manage_billing(state)
        return Denial(
            DenialCode.PAYMENT_REQUIRED,
            f"Your subscription is {state.status}: the payment did not go through. Update your payment "
            f"method ({portal or 'contact ' + links.support_email}).",
            402, subscription_id=state.subscription_id,
        )
    return Denial(
        DenialCode.SUBSCRIPTION_ENDED,
        f"Your KAMIYO subscription is {state.status}, so this token no longer grants access. Renew at "
        f"{links.pricing_url}.",
        403, subscription_id=state.subscription_id,
    )


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest % 60} s"
