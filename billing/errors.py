"""Exceptions of the billing authority.

    BillingError
    ├── ConfigurationError     a setting or an argument the operator gave is unusable
    ├── InvalidTokenError      a token that does not authenticate (malformed, forged, expired, rotated away)
    ├── NotFoundError          no such token / customer / subscription / event
    ├── InvalidRequestError    an HTTP caller's request is unusable (`code`, `message`: answered 400)
    ├── StoreError             the store refused or failed an operation
    └── StripeGatewayError     Stripe refused a call or could not be reached (billing.stripe_gateway)

Messages never contain a token, a key or a webhook secret.
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every error the billing authority raises on purpose."""


class ConfigurationError(BillingError):
    pass


class InvalidTokenError(BillingError):
    """The token does not authenticate; `reason` is safe to show (it never echoes the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFoundError(BillingError):
    pass


class InvalidRequestError(BillingError):
    """A request body or parameter we refuse; `code` is machine-readable, `message` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StoreError(BillingError):
    pass
