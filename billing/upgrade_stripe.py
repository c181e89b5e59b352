"""What following an upgrade link does at Stripe: the portal's confirmation flow, a direct plan change
for a subscription the portal cannot update, Checkout for an operator grant, or the metered overage
item. Each returns where to send the customer next, or raises `LinkRefused`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from billing.config import BillingConfig
from billing.overage import CAP_METADATA_KEY, overage_terms
from billing.store.upgrade_sql import UpgradeLink
from billing.stripe_gateway import StripeGateway

if TYPE_CHECKING:
    from stripe.params.billing_portal import SessionCreateParamsFlowData
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

# The Checkout Session's metadata key naming the link it was opened from (an operator grant's upgrade).
LINK_METADATA_KEY = "upgrade_link"


class LinkRefused(Exception):
    """The link cannot be followed: an HTTP status, a code, and words the customer can act on."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def turn_on_overage(link: UpgradeLink, gateway: StripeGateway, config: BillingConfig, cap_usd: int | None,
                          done_url: str) -> str:
    """The metered overage price joins the subscription (no charge until calls past the quota), with
    the customer's cap first when they set one."""
    assert link.stripe_subscription_id is not None and link.used_at is not None
    price = config.overage_price
    assert price is not None
    if cap_usd is not None:
        await gateway.set_subscription_metadata(link.stripe_subscription_id, {CAP_METADATA_KEY: str(cap_usd)})
    subscription = await gateway.retrieve_subscription(link.stripe_subscription_id)
    if overage_terms(subscription, price).item_id is None:  # Stripe has it already: its webhook is coming
        await gateway.add_subscription_item(link.stripe_subscription_id, price,
                                            idempotency_key=f"overage-{link.link_id}-{link.used_at}")
    return done_url


async def open_portal(link: UpgradeLink, gateway: StripeGateway, config: BillingConfig, done_url: str) -> str:
    """The customer portal on the confirmation of this subscription's move to the target price."""
    assert link.stripe_subscription_id is not None and link.stripe_customer_id is not None
    subscription = await gateway.retrieve_subscription(link.stripe_subscription_id)
    item_id = _base_item(subscription, config)
    if item_id is None:
        raise LinkRefused(409, "no_plan_item", "This subscription has no KAMIYO plan to change. Contact support.")
    price = config.price_for_tier(link.target_tier)
    assert price is not None
    if len((subscription.get("items") or {}).get("data") or []) > 1:
        return await _change_directly(link, item_id, price, gateway, done_url)
    flow: SessionCreateParamsFlowData = {
        "type": "subscription_update_confirm",
        "subscription_update_confirm": {
            "subscription": link.stripe_subscription_id,
            "items": [{"id": item_id, "price": price, "quantity": 1}],
        },
        "after_completion": {"type": "redirect", "redirect": {"return_url": done_url}},
    }
    portal = await gateway.create_portal_session(link.stripe_customer_id, f"{_base(config)}/pricing", flow_data=flow)
    return str(portal["url"])


async def _change_directly(link: UpgradeLink, item_id: str, price: str, gateway: StripeGateway, done_url: str) -> str:
    """A subscription the portal cannot update (it carries the overage item too): the API changes
    its plan item; the page the customer confirmed on said what Stripe charges."""
    assert link.stripe_subscription_id is not None and link.used_at is not None
    changed = await gateway.change_subscription_price(link.stripe_subscription_id, item_id, price,
                                                      f"upgrade-{link.link_id}-{link.used_at}")
    if changed.get("pending_update"):
        raise LinkRefused(402, "payment_incomplete", "Stripe could not take the payment for the upgrade, so "
                          "your plan is unchanged. Update your payment method (get_account_status has the "
                          "billing link), then use this link again.")
    return done_url


async def open_checkout(link: UpgradeLink, gateway: StripeGateway, config: BillingConfig) -> str:
    """Checkout for the target tier: an operator grant (or a customer without a subscription) buys one."""
    price = config.price_for_tier(link.target_tier)
    assert price is not None
    params: CheckoutSessionParams = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": f"{_base(config)}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{_base(config)}/pricing",
        "client_reference_id": link.user_id,
        "metadata": {"tier": link.target_tier, LINK_METADATA_KEY: link.link_id},
        "subscription_data": {"metadata": {"tier": link.target_tier}},
        "allow_promotion_codes": True,
        "billing_address_collection": "required",
    }
    if link.stripe_customer_id:
        params["customer"] = link.stripe_customer_id
    else:
        params["customer_email"] = link.email
    session = await gateway.create_checkout_session(params, "upgrade-" + link.link_id)
    return str(session["url"])


def _base(config: BillingConfig) -> str:
    return config.public_url.rstrip("/")


def _base_item(subscription: Mapping[str, Any], config: BillingConfig) -> str | None:
    """The id of the subscription item that carries a tier's price (the plan, not the overage item)."""
    items = (subscription.get("items") or {}).get("data") or []
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        price_id = price.get("id") if isinstance(price, Mapping) else price
        if config.tier_for_price(price_id) is not None:
            return str(item["id"])
    return None
