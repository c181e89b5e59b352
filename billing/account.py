"""What `get_account_status` shows: a pure view of the call's `Grant`. No I/O.

The grant was decided by the same trip that counted the call, so the view needs no store read of
its own: tier, subscription, token, usage after this call, limits, and the ways out that exist
for this subscription (no upgrade link on the top tier, no billing portal for an operator grant).
"""

from __future__ import annotations

from datetime import UTC, datetime

from billing.access import Grant, Links, subscription_grants_access
from billing.overage import overage_status
from billing.quota import windows


def account_status(grant: Grant, links: Links) -> dict[str, object]:
    """The view; the grant must carry the account's state (admitted `with_account`).

    Raises:
        ValueError: the grant was admitted without the account's state (a wiring bug).
    """
    state, tier, now = grant.state, grant.tier, grant.decided_at
    if state is None:
        raise ValueError("the call was admitted without the account's state")
    current = windows(now)
    return {
        "tier": tier.name,
        "email": state.email,
        "subscription": {
            "kind": "operator_grant" if state.kind == "grant" else "stripe",
            "status": state.status,
            "access": subscription_grants_access(state, now) and state.revoked_at is None,
            "past_due": state.status == "past_due",
            "cancel_at_period_end": state.cancel_at_period_end,
            "current_period_end": iso(state.current_period_end),
        },
        "token": {
            "token_id": state.token_id,
            "expires_at": iso(state.expires_at),
            "revoked": state.revoked_at is not None,
            "revoked_reason": state.revoked_reason,
        },
        "usage": {
            "calls_this_minute": grant.minute_used,
            "calls_left_this_minute": max(tier.calls_per_minute - grant.minute_used, 0),
            "minute_resets_at": iso(current.minute_resets_at),
            "calls_today": grant.day_used,
            "calls_left_today": max(tier.calls_per_day - grant.day_used, 0),
            "day_resets_at": iso(current.day_resets_at),
        },
        "limits": {
            "calls_per_minute": tier.calls_per_minute,
            "calls_per_day": tier.calls_per_day,
            "search_results_per_call": tier.search_results_per_call,
            "monitor_wallet": tier.monitor_wallet,
            "risk_detail": tier.risk_detail,
        },
        "overage": {
            **overage_status(tier, sold=links.overage_sold, opted_in=state.kind == "stripe"
                             and state.overage_item_id is not None, customer_cap_cents=state.overage_cap_cents,
                             calls=grant.overage_used),
            "this_call_metered": grant.metered,
            "period_ends_at": iso(state.current_period_end),
        },
        "upgrade_url": links.upgrade_url(state),
        "manage_billing": links.manage_billing(state),
        "support": links.support_email,
    }


def iso(ts: int | None) -> str | None:
    """A unix time as ISO 8601 UTC (`2030-01-01T00:00:00Z`)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
