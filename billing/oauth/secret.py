"""The random secrets of the OAuth flow and the digests the store keeps of them. Pure, no I/O.

Every secret is 256 random bits, URL-safe, with a short prefix that says what it is (so a pasted
value can be recognised and a support request can say "the sign-in link", never the value).
Only `secret_hash(value)` is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

REQUEST_PREFIX = "kar_"  # an authorization request (names the pending request in page URLs)
LINK_PREFIX = "ksl_"  # a mailed sign-in link
CODE_PREFIX = "kac_"  # an authorization code
REFRESH_PREFIX = "krt_"  # a refresh token
SESSION_PREFIX = "kbs_"  # a browser session (cookie)
CLIENT_SECRET_PREFIX = "kcs_"  # a registered client's secret

_SHAPE = re.compile(r"^k[a-z]{2}_[A-Za-z0-9_-]{43}$")


def new_secret(prefix: str) -> str:
    """A fresh secret: `prefix` and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(value: str) -> str:
    """The SHA-256 hex digest under which a secret is stored."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like(value: object, prefix: str) -> bool:
    """Whether `value` has the shape of a secret made by `new_secret(prefix)` (no store lookup for junk)."""
    return isinstance(value, str) and value.startswith(prefix) and bool(_SHAPE.match(value))


def new_grant_id() -> str:
    return "ogr_" + uuid.uuid4().hex
