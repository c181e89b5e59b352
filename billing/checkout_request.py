"""The purchase path's requests, checked before anything reaches Stripe (pure: no I/O).

    parse_checkout_request(body, config) -> CheckoutRequest      tier, email, redirect URLs
    checkout_session_params(request, ...) -> dict                 what Stripe's Checkout gets
    check_session_id(raw) / check_redirect_url(raw, origins)      single values

Every refusal is an `InvalidRequestError` whose `code` names the rule and whose `message` says
what to send instead. Redirect URLs must lie inside the configured origins: no open redirects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from billing.authority import normalize_email
from billing.claims import is_session_id
from billing.config import BillingConfig
from billing.errors import ConfigurationError, InvalidRequestError
from billing.tiers import TIER_NAMES

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams
    from stripe.params.checkout import SessionCreateParamsLineItem

SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
MAX_URL_LENGTH = 2048
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_DOMAIN_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """A valid `create-checkout-session` body; `success_url` already holds the session placeholder."""

    tier: str
    price_id: str
    email: str
    success_url: str
    cancel_url: str
    # The metered overage price, when the buyer ticked "keep working past the daily quota".
    overage_price: str | None = None


def parse_checkout_request(body: Mapping[str, Any], config: BillingConfig) -> CheckoutRequest:
    """Check a decoded JSON body `{tier, user_email, success_url, cancel_url, overage?}`.

    Raises:
        InvalidRequestError: a field is missing, mistyped or refused (the first one found).
    """
    tier = _required_str(body, "tier")
    if tier not in TIER_NAMES:
        raise InvalidRequestError("invalid_tier", f"unknown tier {_quote(tier)}; choose one of {', '.join(TIER_NAMES)}")
    price_id = config.price_for_tier(tier)
    if price_id is None:
        raise InvalidRequestError("tier_not_available",
                                  f"the {tier} tier has no Stripe price configured on this server "
                                  f"(STRIPE_PRICE_MCP_{tier.upper()}); choose another tier")
    email = check_email(_required_str(body, "user_email"))
    origins = config.allowed_redirect_origins
    success_url = with_session_placeholder(check_redirect_url(_required_str(body, "success_url"), origins,
                                                              field="success_url"))
    cancel_url = check_redirect_url(_required_str(body, "cancel_url"), origins, field="cancel_url")
    return CheckoutRequest(tier, price_id, email, success_url, cancel_url, _overage_price(body, tier, config))


def _overage_price(body: Mapping[str, Any], tier: str, config: BillingConfig) -> str | None:
    """The metered price to add when the buyer opted into overage (and the tier and server offer it)."""
    wanted = body.get("overage", False)
    if not isinstance(wanted, bool):
        raise InvalidRequestError("invalid_field", "overage must be true or false")
    if not wanted:
        return None
    tier_terms = config.tiers.get(tier)
    if not config.overage_enabled or tier_terms is None or not tier_terms.overage:
        raise InvalidRequestError("overage_not_available",
                                  f"the {tier} tier has no metered overage on this server; send overage: false")
    return config.overage_price


def parse_portal_return_url(body: Mapping[str, Any], config: BillingConfig) -> str:
    """The `return_url` of a `create-portal-session` body (the public URL when absent).

    Raises:
        InvalidRequestError: it is not a string or lies outside the allowed origins.
    """
    if body.get("return_url") is None:
        return config.public_url.rstrip("/") + "/"
    return check_redirect_url(_required_str(body, "return_url"), config.allowed_redirect_origins,
                              field="return_url")


def check_email(raw: str) -> str:
    """A trimmed, lower-cased address Stripe will accept.

    Raises:
        InvalidRequestError: not a plain `local@domain.tld` address.
    """
    try:
        email = normalize_email(raw)
    except ConfigurationError:
        email = ""
    local, _, domain = email.rpartition("@")
    labels = domain.split(".")
    valid = (
        bool(email)
        and len(local) <= 64
        and _LOCAL_PART.match(local) is not None
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.match(label) for label in labels)
        and ((labels[-1].isalpha() and len(labels[-1]) >= 2) or labels[-1].startswith("xn--"))
    )
    if not valid:
        raise InvalidRequestError("invalid_email", f"user_email {_quote(raw)} is not a valid email address")
    return email


def check_redirect_url(raw: str, allowed_origins: Iterable[str], *, field: str) -> str:
    """`raw` if it is an absolute http(s) URL on one of `allowed_origins`.

    Raises:
        InvalidRequestError: malformed, too long, with credentials, or on another origin.
    """
    if len(raw) > MAX_URL_LENGTH:
        raise InvalidRequestError("invalid_redirect_url", f"{field} is longer than {MAX_URL_LENGTH} characters")
    if not raw.isprintable() or any(c.isspace() or c == "\\" for c in raw):
        raise InvalidRequestError("invalid_redirect_url",
                                  f"{field} must not contain spaces, backslashes or control characters")
    origin = url_origin(raw)
    if origin is None:
        raise InvalidRequestError("invalid_redirect_url",
                                  f"{field} must be an absolute http(s) URL such as https://kamiyo.ai/billing/success")
    allowed = {url_origin(o) for o in allowed_origins}
    if origin not in allowed:
        choices = ", ".join(sorted(o for o in allowed if o)) or "none configured"
        raise InvalidRequestError("redirect_not_allowed",
                                  f"{field} must be on an allowed origin ({choices}); got {origin}")
    return raw


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lower-cased, default port dropped; None if unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def with_session_placeholder(url: str) -> str:
    """`url` with Stripe's `{CHECKOUT_SESSION_ID}` placeholder, added as `session_id=` if absent."""
    if SESSION_PLACEHOLDER in url:
        return url
    base, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return f"{base}{separator}session_id={SESSION_PLACEHOLDER}{hash_mark}{fragment}"


def check_session_id(raw: str) -> str:
    """`raw` if it looks like a Checkout Session id (`cs_test_…`, `cs_live_…`).

    Raises:
        InvalidRequestError: it does not; Stripe is not asked.
    """
    if not is_session_id(raw):
        raise InvalidRequestError("invalid_session_id",
                                  f"{_quote(raw)} is not a Checkout Session id (cs_test_... or cs_live_...)")
    return raw


def check_idempotency_key(raw: str | None) -> str | None:
    """The client's `Idempotency-Key` header, if sent and usable as Stripe's.

    Raises:
        InvalidRequestError: empty, longer than 255 characters or not printable ASCII.
    """
    if raw is None:
        return None
    if not 0 < len(raw) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(" " < c <= "~" for c in raw):
        raise InvalidRequestError("invalid_idempotency_key",
                                  f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
                                  "printable ASCII characters without spaces")
    return raw


def client_reference(email: str, user_id: str | None) -> str:
    """Our reference for the buyer: the store's user id, else a stable digest of the email.

    Stable, so a retried request with the same Idempotency-Key sends Stripe the same parameters.
    """
    return user_id or "email_" + hashlib.sha256(email.encode()).hexdigest()[:40]


def checkout_session_params(request: CheckoutRequest, *, stripe_customer_id: str | None, client_reference_id: str,
                            automatic_tax: bool) -> CheckoutSessionParams:
    """The parameters of Stripe's `POST /v1/checkout/sessions` for `request`."""
    line_items: list[SessionCreateParamsLineItem] = [{"price": request.price_id, "quantity": 1}]
    if request.overage_price:
        line_items.append({"price": request.overage_price})  # metered: Stripe refuses a quantity
    params: CheckoutSessionParams = {
        "mode": "subscription",
        "line_items": line_items,
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "client_reference_id": client_reference_id,
        "metadata": {"tier": request.tier},
        "subscription_data": {"metadata": {"tier": request.tier}},
        "allow_promotion_codes": True,
        "billing_address_collection": "required",
    }
    if stripe_customer_id:
        params["customer"] = stripe_customer_id
        if automatic_tax:
            # Tax needs the address Checkout collects saved on the existing customer.
            params["customer_update"] = {"address": "auto", "name": "auto"}
    else:
        params["customer_email"] = request.email
    if automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    return params


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise InvalidRequestError("missing_field", f"{name} is required")
    if not isinstance(value, str):
        raise InvalidRequestError("invalid_field", f"{name} must be a string")
    if not value.strip():
        raise InvalidRequestError("missing_field", f"{name} must not be empty")
    return value.strip()


def _quote(value: str, limit: int = 80) -> str:
    """`value` quoted for a message, cut short so an error never echoes a huge input."""
    return repr(value if len(value) <= limit else value[:limit] + "...")
