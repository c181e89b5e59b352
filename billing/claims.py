"""Claims: single-use, expiring secrets that mint a token when redeemed. Pure, no I/O.

Each entitlement the webhook creates gets two claims: one whose secret is the Checkout Session id
(the success page, 24 h) and one whose secret is a random code mailed as a link (7 days from the
moment the mail is sent: the code is generated then, see `billing.mail.claim_mail`). Redeeming
either mints the token and ends both. Only `claim_hash(secret)` is ever stored; a stored Stripe
payload names its session by `redact_session_ids`'s digest form, never by the id itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from billing.access import entitlement_ended

KIND_SESSION = "checkout_session"
KIND_EMAIL = "email_code"
SESSION_CLAIM_TTL_SECONDS = 24 * 3600
EMAIL_CLAIM_TTL_SECONDS = 7 * 24 * 3600
CODE_BYTES = 32

# A Checkout Session id as Stripe writes it (the one shape every check uses).
SESSION_ID_PATTERN = r"^cs_(test|live)_[A-Za-z0-9]{1,250}$"
# The form a session id takes in what we store: its claim digest, which no claim request accepts.
REDACTED_SESSION_PREFIX = "cs_redacted_sha256_"

_CODE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_SESSION_ID_ANYWHERE = re.compile(r"(?<![A-Za-z0-9_])cs_(?:test|live)_[A-Za-z0-9]{1,250}")


@dataclass(frozen=True, slots=True)
class ClaimState:
    """A claim joined with its entitlement, as redemption sees it."""

    claim_id: str
    subscription_id: str
    kind: str
    expires_at: int
    redeemed_at: int | None
    user_id: str
    email: str
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool


@dataclass(frozen=True, slots=True)
class ClaimRefusal:
    """Why a claim does not mint a token: an HTTP status, a code and words the customer can act on."""

    status: int
    code: str
    message: str


def new_claim_code() -> str:
    """A fresh emailed claim code (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(CODE_BYTES)


def claim_hash(secret: str) -> str:
    """The SHA-256 hex digest under which a claim secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_claim_code(value: object) -> bool:
    return isinstance(value, str) and bool(_CODE.match(value))


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and bool(_SESSION_ID.match(value))


def redact_session_ids(text: str) -> str:
    """`text` with every Checkout Session id replaced by its digest form (idempotent).

    Used on Stripe payloads and messages before they are stored: a session id is the success page's
    claim secret. The digest form still names the session's claim, so a stored event replays.
    """
    if "cs_test_" not in text and "cs_live_" not in text:  # most payloads: a substring scan instead of a regex one
        return text
    return _SESSION_ID_ANYWHERE.sub(lambda match: REDACTED_SESSION_PREFIX + claim_hash(match[0]), text)


def session_claim_hash(session_id: str) -> str:
    """The stored hash of a session's claim, from a session id in a payload, live or redacted.

    Only for ids read from a verified (or stored) Stripe payload, never from a claim request: the
    digest form is in the database, and a claim is redeemed only with the id itself.
    """
    if session_id.startswith(REDACTED_SESSION_PREFIX):
        return session_id[len(REDACTED_SESSION_PREFIX):]
    return claim_hash(session_id)


def unknown_claim() -> ClaimRefusal:
    """The one answer for a secret we do not know: it never says whether a subscription exists."""
    return ClaimRefusal(404, "claim_not_found",
                        "This claim link or checkout session is not valid. Use the link from your welcome email "
                        "exactly as sent; if you paid just now, wait a few seconds and try again.")


def decide_redemption(claim: ClaimState | None, now: int, *, support_email: str, pricing_url: str
                      ) -> ClaimRefusal | None:
    """None when `claim` may mint a token now, else why not (checked in this order)."""
    if claim is None:
        return unknown_claim()
    if claim.redeemed_at is not None:
        return ClaimRefusal(410, "claim_already_redeemed",
                            f"This token was already revealed on {_date(claim.redeemed_at)}; a claim works once. "
                            f"If you lost the token, write to {support_email} for a new claim link; if it leaked, "
                            "replace it with POST /api/mcp/token/rotate (sent with the old token).")
    ended = entitlement_ended(claim.status, claim.current_period_end, claim.cancel_at_period_end, now)
    if ended is not None:
        return ClaimRefusal(403, "subscription_not_active",
                            f"No token can be issued: {ended}. Plans are at {pricing_url}; "
                            f"questions to {support_email}.")
    if claim.expires_at <= now:
        return ClaimRefusal(410, "claim_expired",
                            f"This claim expired on {_date(claim.expires_at)}. Contact {support_email} "
                            "to get a new claim email.")
    return None


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
