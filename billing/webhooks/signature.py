"""The `Stripe-Signature` check on a webhook's raw body, as Stripe specifies it. Pure, no I/O.

    verify_signature(body, request.headers["stripe-signature"], secret, tolerance=300)

The header is `t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...][,v0=...]`; the signed message is
`<t>.` followed by the body's bytes exactly as received, keyed with the endpoint's `whsec_...`
secret. A delivery verifies when one of its `v1` signatures matches (several during a secret's
rotation; compared in constant time) and `t` is no older than `tolerance` seconds. This is what
`stripe.WebhookSignature.verify_header` checks, computed once over the bytes instead of over a
decoded and re-encoded copy of the body.
"""

from __future__ import annotations

import hmac
import time

SCHEME = "v1"


class SignatureError(ValueError):
    """The delivery does not verify; the message says why (never the secret or the signature)."""


def verify_signature(body: bytes, header: str, secret: str, *, tolerance: int, now: float | None = None) -> int:
    """The signed timestamp of a delivery whose `header` verifies `body` under `secret`.

    Raises:
        SignatureError: the header is malformed, no `v1` signature matches, or the timestamp is
            more than `tolerance` seconds old (at `now`, default the current time).
    """
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and timestamp is None:  # the first one counts, as in Stripe's own libraries
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the Stripe-Signature header has no valid timestamp") from None
        elif key == SCHEME:
            signatures.append(value.encode("ascii", "replace"))
    if timestamp is None:
        raise SignatureError("the Stripe-Signature header has no timestamp")
    if not signatures:
        raise SignatureError(f"the Stripe-Signature header has no {SCHEME} signature")
    expected = hmac.digest(secret.encode(), b"%d.%b" % (timestamp, body), "sha256").hex().encode()
    # Every candidate is compared (no early exit), each in constant time.
    if not sum(hmac.compare_digest(expected, signature) for signature in signatures):
        raise SignatureError("no signature matches the body (another secret, or a body changed after signing)")
    if timestamp < (time.time() if now is None else now) - tolerance:
        raise SignatureError(f"the signature's timestamp is outside the tolerance zone ({tolerance} s)")
    return timestamp
