"""Who may call what, now: grants, denials and the reasons behind them. Pure, no I/O.

The store admits a call in one atomic statement (see store/sqlite.py); when it does not, `diagnose`
reads the token's state and says why, in words a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from billing.tiers import TIERS, Tier, min_tier_for

if TYPE_CHECKING:
    from billing.store.records import TokenState

ENTITLED_STATUSES = frozenset({"active", "trialing", "past_due"})


@dataclass(frozen=True, slots=True)
class Grant:
    """The call is admitted and counted."""

    user_id: str
    subscription_id: str
    tier: Tier
    minute_used: int
    minute_limit: int
    day_used: int
    day_limit: int


@dataclass(frozen=True, slots=True)
class Denial:
    """The call is refused; `message` tells the user why and what to do."""

    code: str
    message: str
    http_status: int
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Links:
    pricing_url: str
    portal_hint: str


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


def diagnose(state: TokenState | None, *, tool: str, now: int, links: Links) -> Denial:
    """Why a call that the store did not admit was refused."""
    if state is None:
        return Denial("invalid_token", "This token is not recognised. Check that you pasted it whole.", 401)
    if state.revoked_at is not None:
        return _revoked(state, links)
    if state.expires_at <= now:
        return Denial(
            "token_expired",
            f"This token expired on {_date(state.expires_at)}. If your subscription is still active, contact "
            f"support for a new token; otherwise subscribe again at {links.pricing_url}.",
            401,
        )
    if not subscription_grants_access(state, now):
        return _not_entitled(state, now, links)
    needed = min_tier_for(tool)
    tier = TIERS.get(state.tier)
    if needed is not None and (tier is None or tier.rank < needed.rank):
        return Denial(
            "tier_required",
            f"{tool} needs the {needed.name} tier or higher; this token's tier is {state.tier}. "
            f"Upgrade at {links.pricing_url} ({links.portal_hint}).",
            403,
        )
    if tier is not None:
        minute = now - now % 60
        day = now - now % 86400
        if state.day_start == day and state.day_count >= tier.calls_per_day:
            reset = day + 86400
            return Denial(
                "daily_quota_exhausted",
                f"The daily quota of {tier.calls_per_day:,} calls on the {tier.name} tier is used up. "
                f"It resets at {_time(reset)} (in {_duration(reset - now)}). For more, upgrade at "
                f"{links.pricing_url}.",
                429,
                retry_after=reset - now,
            )
        if state.minute_start == minute and state.minute_count >= tier.calls_per_minute:
            reset = minute + 60
            return Denial(
                "rate_limited",
                f"The limit of {tier.calls_per_minute} calls per minute on the {tier.name} tier is "
                f"reached. It resets at {_time(reset)} (in {reset - now} s). For higher limits, upgrade "
                f"at {links.pricing_url}.",
                429,
                retry_after=reset - now,
            )
    # The state changed between the refused statement and this read: a retry will tell.
    return Denial("retry", "The call could not be admitted right now; please retry.", 503, retry_after=1)


def _revoked(state: TokenState, links: Links) -> Denial:
    reason = state.revoked_reason or "revoked"
    if reason == "rotated":
        return Denial("token_rotated", "This token was replaced by a newer one (rotated). Use the new token.", 401)
    if reason == "subscription_ended":
        return Denial(
            "subscription_ended",
            f"Your KAMIYO subscription has ended, so this token no longer works. Renew at {links.pricing_url}.",
            403,
        )
    return Denial(
        "token_revoked",
        f"This token was revoked ({reason}). Contact support, or subscribe at {links.pricing_url} for a new one.",
        403,
    )


def _not_entitled(state: TokenState, now: int, links: Links) -> Denial:
    if state.status in ENTITLED_STATUSES:  # cancelled at period end, and the period is over
        return Denial(
            "subscription_ended",
            f"Your subscription ended on {_date(state.current_period_end or now)}. Renew at {links.pricing_url}.",
            403,
        )
    if state.status in ("unpaid", "incomplete"):
        return Denial(
            "payment_required",
            f"Your subscription is {state.status}: the payment did not go through. Update your payment "
            f"method ({links.portal_hint}).",
            402,
        )
    return Denial(
        "subscription_ended",
        f"Your KAMIYO subscription is {state.status}, so this token no longer grants access. Renew at "
        f"{links.pricing_url}.",
        403,
    )


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest % 60} s"
