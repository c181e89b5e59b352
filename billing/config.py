"""What the billing authority needs to know, handed in by the product's Settings (frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from billing.tiers import DEFAULT_TIERS, TIER_NAMES, TierTable

STRIPE_API_BASE = "https://api.stripe.com"
# Stripe accepts up to 1,000 meter events per second in live mode; stay under it.
DEFAULT_METER_EVENTS_PER_SECOND = 500
MAX_METER_EVENTS_PER_SECOND = 1000


@dataclass(frozen=True, slots=True)
class BillingConfig:
    public_url: str
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str = STRIPE_API_BASE
    # tier name -> Stripe price id, for the tiers that have a price configured
    prices: dict[str, str] = field(default_factory=dict)
    allowed_redirect_origins: tuple[str, ...] = ()
    checkout_automatic_tax: bool = False
    checkout_rate_per_minute: int = 10
    checkout_lookup_rate_per_minute: int = 30
    claim_rate_per_minute: int = 20
    rotate_rate_per_minute: int = 10
    webhook_unverified_rate_per_minute: int = 30
    webhook_tolerance_seconds: int = 300
    support_email: str = "support@kamiyo.ai"
    # The tier table in force (KAMIYO_TIERS_FILE applied).
    tiers: TierTable = DEFAULT_TIERS
    # Metered overage: the metered price (on a Billing Meter) and the meter's event name.
    overage_price: str | None = None
    meter_event_name: str | None = None
    meter_events_per_second: int = DEFAULT_METER_EVENTS_PER_SECOND

    @property
    def billing_enabled(self) -> bool:
        return bool(self.stripe_secret_key)

    @property
    def overage_enabled(self) -> bool:
        """Overage can be sold and metered: billing is on and the metered price and meter are set."""
        return self.billing_enabled and bool(self.overage_price and self.meter_event_name)

    def tier_for_price(self, price_id: str | None) -> str | None:
        """The tier whose configured price is `price_id`, else None."""
        for tier, configured in self.prices.items():
            if configured == price_id:
                return tier
        return None

    def price_for_tier(self, tier: str) -> str | None:
        return self.prices.get(tier) if tier in TIER_NAMES else None


@dataclass(frozen=True, slots=True)
class MailConfig:
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    email_from: str = "KAMIYO <no-reply@kamiyo.ai>"

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_host)


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    """The OAuth authorization server (billing/oauth): lifetimes, limits and the metadata-document fetch."""

    enabled: bool = True
    access_token_seconds: int = 3600
    refresh_token_days: int = 30
    code_seconds: int = 120
    request_seconds: int = 3600
    sign_in_link_seconds: int = 900
    sign_in_mails_per_email_per_hour: int = 5
    sign_in_rate_per_minute: int = 10
    register_rate_per_minute: int = 10
    # Hosts whose Client ID Metadata Documents may be fetched from private or loopback addresses
    # (clients inside the operator's own network); every other host must resolve to public addresses.
    metadata_private_hosts: tuple[str, ...] = ()
    # CA bundle for fetching metadata documents (SSL_CERT_FILE); certifi's bundle when unset.
    metadata_ca_file: str | None = None
