"""Upgrade links: a refusal's one-time link that upgrades this very subscription in two clicks.

    links = UpgradeLinks(store, config)
    issued = await links.issue(subscription_id, "team", reason="tier_required")   # → issued.url
    link = await links.show(code)                       # GET  /billing/upgrade?code=…  (changes nothing)
    url = await links.follow(code, gateway)             # POST /billing/upgrade: single-use, → Stripe

A link is a 256-bit code whose SHA-256 is stored (like claims), bound to one subscription and one
target tier, usable once within 30 minutes, and never carries the MCP token: whoever holds the
link may only upgrade the subscription it names. Following it opens Stripe's customer portal on
the `subscription_update_confirm` flow for the target tier's price, which returns to
`/billing/upgraded` ("done — retry your request"); the `customer.subscription.updated` webhook then
completes the link and the next call runs at the new tier. Stripe's portal cannot update a
subscription with more than one item, so one that also carries the metered overage price is changed
through the API instead, once the customer confirmed on our page (the prorated difference invoiced
at once, the change applied only when it is paid). An operator grant has no Stripe subscription, so
its link opens Checkout for the target tier (a new subscription, its token on the success page; the
session names the link in its metadata, and `checkout.session.completed` completes the link). What
following does at Stripe is `billing.upgrade_stripe`.

A quota refusal of a tier that sells metered overage also carries a link that turns overage on
(`issue_overage`, same rules): following it adds the metered price to the subscription through the
API (nothing is charged until calls past the quota), and the webhook showing that item completes it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from billing.access import ENTITLED_STATUSES
from billing.claims import claim_hash
from billing.config import BillingConfig
from billing.overage import parse_cap_usd
from billing.store.upgrade_sql import OVERAGE_REASON, UpgradeLink
from billing.stripe_gateway import StripeGateway, StripeGatewayError
from billing.upgrade_stripe import LinkRefused, open_checkout, open_portal, turn_on_overage

if TYPE_CHECKING:
    from billing.store import Store

__all__ = ["DONE_PATH", "UPGRADE_PATH", "IssuedLink", "LinkRefused", "UpgradeLinks"]

UPGRADE_PATH = "/billing/upgrade"
DONE_PATH = "/billing/upgraded"
LINK_TTL_SECONDS = 30 * 60
# A link shown again (the same refusal repeated) keeps at least this long to live.
REUSE_MIN_SECONDS = 20 * 60
CODE_BYTES = 32
_CODE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A link to put in a refusal (its `url` holds the code: show it to the customer only).

    `new_subscription`: following it buys a new subscription through Checkout (an operator grant's
    link), whose token comes on the page after payment: the refused token itself is not upgraded.
    `overage`: following it turns metered overage on for the subscription (its tier stays).
    """

    url: str
    link_id: str
    target_tier: str
    expires_at: int
    new_subscription: bool = False
    overage: bool = False


class UpgradeLinks:
    def __init__(self, store: Store, config: BillingConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._config = config
        self._clock = clock
        self._base = config.public_url.rstrip("/")
        # The last link issued per (subscription, tier): a refusal repeated reuses it rather than
        # writing a new one each time (it is checked unused before reuse). Memory only, never logged.
        self._recent: dict[tuple[str, str], tuple[str, IssuedLink]] = {}

    def now(self) -> int:
        return int(self._clock())

    def can_offer(self, target_tier: str) -> bool:
        """Whether a link to `target_tier` could be followed here: billing is on and the tier has a price."""
        return self._config.billing_enabled and self._config.price_for_tier(target_tier) is not None

    async def issue(self, subscription_id: str, target_tier: str, *, reason: str) -> IssuedLink:
        """A link that upgrades `subscription_id` to `target_tier`."""
        return await self._issue(subscription_id, target_tier, reason, (subscription_id, target_tier))

    async def bought_already(self, subscription_id: str, target_tier: str) -> str | None:
        """For an operator grant: the tier of a subscription its user already bought at `target_tier` or
        above (its own token runs the call; a link would sell a second one), else None."""
        target = self._config.tiers.get(target_tier)
        owned = [t for t in map(self._config.tiers.get, await self.store.bought_tiers(subscription_id)) if t]
        best = max(owned, key=lambda t: t.rank, default=None)
        return best.name if best is not None and target is not None and best.rank >= target.rank else None

    async def issue_overage(self, subscription_id: str) -> IssuedLink | None:
        """A link that turns metered overage on for `subscription_id`, or None when it cannot have it
        (overage not sold here, not its tier's, an operator grant, already on, or not in force)."""
        found = await self.store.subscription_for_offer(subscription_id)
        if found is None or not self._config.overage_enabled:
            return None
        kind, tier_name, status, item_id = found
        tier = self._config.tiers.get(tier_name)
        if kind != "stripe" or tier is None or not tier.overage or item_id is not None or \
                status not in ENTITLED_STATUSES:
            return None
        return await self._issue(subscription_id, tier_name, OVERAGE_REASON, (subscription_id, "+overage"))

    async def _issue(self, subscription_id: str, target_tier: str, reason: str, key: tuple[str, str]) -> IssuedLink:
        now = self.now()
        recent = self._recent.get(key)
        if recent is not None and recent[1].expires_at - now >= REUSE_MIN_SECONDS:
            stored = await self.store.upgrade_link(claim_hash(recent[0]))
            if stored is not None and stored.used_at is None and stored.completed_at is None:
                return recent[1]
        code = secrets.token_urlsafe(CODE_BYTES)
        expires_at = now + LINK_TTL_SECONDS
        link_id = await self.store.create_upgrade_link(subscription_id=subscription_id, target_tier=target_tier,
                                                       reason=reason, code_hash=claim_hash(code), now=now,
                                                       expires_at=expires_at)
        stored = await self.store.upgrade_link(claim_hash(code))
        new_subscription = stored is not None and (stored.kind != "stripe" or not stored.stripe_subscription_id)
        issued = IssuedLink(f"{self._base}{UPGRADE_PATH}?code={quote(code)}", link_id, target_tier, expires_at,
                            new_subscription, reason == OVERAGE_REASON)
        if len(self._recent) > 10_000:
            self._recent = {k: v for k, v in self._recent.items() if v[1].expires_at > now}
        self._recent[key] = (code, issued)
        return issued

    async def show(self, code: str) -> UpgradeLink:
        """The link, if it can still be followed (reading changes nothing).

        Raises:
            LinkRefused: unknown, expired, used, done already, or its subscription cannot be upgraded.
        """
        link = await self.store.upgrade_link(claim_hash(code)) if _CODE.match(code) else None
        self._check(link, self.now())
        assert link is not None
        return link

    async def follow(self, code: str, gateway: StripeGateway, *, cap_field: str = "") -> str:
        """Use the link once and return the Stripe page (portal flow or Checkout) to send the customer to.
        `cap_field`: the spend cap (whole dollars) the customer typed on an overage link's page, if any.

        Raises:
            LinkRefused: as `show`, a cap that is not allowed (the link unused), or Stripe cannot open
                the page (the link then stays usable).
        """
        found = await self.store.upgrade_link(claim_hash(code)) if _CODE.match(code) else None
        self._check(found, self.now())
        assert found is not None
        cap = self._cap(found, cap_field)
        link = await self.store.use_upgrade_link(claim_hash(code), now=self.now())
        if link is None:  # used by a concurrent click between the check and here
            raise LinkRefused(410, "link_used", _USED)
        for key, (_, issued) in list(self._recent.items()):
            if issued.link_id == link.link_id:
                del self._recent[key]
        try:
            if link.reason == OVERAGE_REASON:
                return await turn_on_overage(link, gateway, self._config, cap, self.done_url(link.tier, overage=True))
            if link.kind == "stripe" and link.stripe_subscription_id:
                return await open_portal(link, gateway, self._config, self.done_url(link.target_tier))
            return await open_checkout(link, gateway, self._config)
        except (StripeGatewayError, LinkRefused):
            await self.store.release_upgrade_link(link.link_id)
            raise

    def done_url(self, tier: str, *, overage: bool = False) -> str:
        return f"{self._base}{DONE_PATH}?tier={quote(tier)}" + ("&overage=on" if overage else "")

    def _check(self, link: UpgradeLink | None, now: int) -> None:
        if link is None:
            raise LinkRefused(404, "link_not_found", "This upgrade link is not valid. Retry your request in Claude "
                              "to get a fresh one.")
        tiers = self._config.tiers
        target, current = tiers.get(link.target_tier), tiers.get(link.tier)
        if link.reason == OVERAGE_REASON:
            self._check_overage(link)
        elif link.completed_at is not None or (target and current and current.rank >= target.rank):
            raise LinkRefused(409, "already_upgraded", f"Your subscription is already on the {link.tier} tier. "
                              "Go back to Claude and retry your request.")
        if link.used_at is not None:
            raise LinkRefused(410, "link_used", _USED)
        if link.expires_at <= now:
            raise LinkRefused(410, "link_expired", "This upgrade link has expired (links last 30 minutes). Retry "
                              "your request in Claude to get a fresh one.")
        if link.status not in ENTITLED_STATUSES:
            raise LinkRefused(409, "subscription_not_active", f"This subscription is {link.status}, so it cannot be "
                              f"upgraded. Choose a plan at {self._base}/pricing.")
        if not self._config.billing_enabled:
            raise LinkRefused(503, "billing_not_configured", "Billing is not configured on this server, so plans "
                              "cannot be changed here. Contact support.")
        if self._config.price_for_tier(link.target_tier) is None:
            raise LinkRefused(409, "tier_not_available", f"The {link.target_tier} tier cannot be bought on this "
                              "server. Contact support.")

    def _check_overage(self, link: UpgradeLink) -> None:
        if link.completed_at is not None or link.overage_item_id is not None:
            raise LinkRefused(409, "already_on", "Metered overage is already on for this subscription. Go back to "
                              "Claude and retry your request.")
        tier = self._config.tiers.get(link.tier)
        if not self._config.overage_enabled or tier is None or not tier.overage:
            raise LinkRefused(409, "overage_not_available", f"Metered overage is not available on the {link.tier} "
                              "tier here. Contact support.")

    def _cap(self, link: UpgradeLink, field: str) -> int | None:
        """The customer's spend cap from an overage link's form: None when left empty (the default holds)."""
        tier = self._config.tiers.get(link.tier)
        if link.reason != OVERAGE_REASON or not field.strip() or tier is None:
            return None
        cap = parse_cap_usd(field)
        if cap is None or cap > tier.overage_cap_usd * 100:
            raise LinkRefused(400, "invalid_cap", f"The spend cap must be a whole number of dollars from 0 to "
                              f"{tier.overage_cap_usd:,} (the most this plan allows). Go back and correct it; "
                              "the link still works.")
        return cap // 100


_USED = ("This upgrade link was already used. If the change did not go through, retry your request in Claude to "
         "get a fresh link.")
