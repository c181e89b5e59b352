"""The Stripe-Signature check: what Stripe's own library accepts and refuses, over the raw bytes."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe

from billing.webhooks.signature import SignatureError, verify_signature
from tests.billing.webhooks.webhook_support import SECRET, raw_event
from tests.support import webhook_secret

BODY = raw_event("customer.subscription.updated")


def sign(body: bytes, t: int, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def headers(now: int) -> dict[str, str]:
    """Signature headers for BODY, by what they hold, signed around `now`."""
    good, other = sign(BODY, now), sign(BODY, now, webhook_secret("another_secret"))
    return {
        "signed now": f"t={now},v1={good}",
        "during a secret's rotation (two v1, the second ours)": f"t={now},v1={other},v1={good}",
        "with a v0 signature beside": f"t={now},v0={other},v1={good}",
        "signed with another secret": f"t={now},v1={other}",
        "only a v0 signature": f"t={now},v0={good}",
        "no timestamp": f"v1={good}",
        "a timestamp that is not a number": f"t=now,v1={good}",
        "signed at another time": f"t={now - 1},v1={good}",
        "older than the tolerance": f"t={now - 301},v1={sign(BODY, now - 301)}",
        "inside the tolerance": f"t={now - 240},v1={sign(BODY, now - 240)}",
        "a truncated signature": f"t={now},v1={good[:-2]}",
        "an empty v1": f"t={now},v1=",
        "garbage": "this is not a signature header",
    }


def stripe_accepts(body: bytes, header: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(body.decode(), header, SECRET, 300)
    except stripe.SignatureVerificationError:
        return False
    return True


def we_accept(body: bytes, header: str) -> bool:
    try:
        verify_signature(body, header, SECRET, tolerance=300)
    except SignatureError:
        return False
    return True


@pytest.mark.parametrize("case", headers(0))
def test_a_header_verifies_exactly_when_stripes_own_library_says_it_does(case: str) -> None:
    header = headers(int(time.time()))[case]

    assert we_accept(BODY, header) == stripe_accepts(BODY, header)


def test_the_signed_timestamp_is_returned_and_a_stale_one_names_the_tolerance() -> None:
    now = 1_900_000_000
    signed = headers(now)

    assert verify_signature(BODY, signed["signed now"], SECRET, tolerance=300, now=now) == now
    with pytest.raises(SignatureError, match=r"tolerance zone \(300 s\)"):
        verify_signature(BODY, signed["older than the tolerance"], SECRET, tolerance=300, now=now)


def test_the_raw_bytes_are_what_is_signed_whatever_they_hold() -> None:
    body = '{"id": "evt_1", "name": "Zoë — 東京"}'.encode()
    now = int(time.time())
    header = f"t={now},v1={sign(body, now)}"

    assert we_accept(body, header) and stripe_accepts(body, header)
    assert not we_accept(body.replace("Zoë".encode(), b"Zoe"), header)


def test_a_refusal_never_repeats_the_secret_or_the_expected_signature() -> None:
    now = 1_900_000_000
    with pytest.raises(SignatureError) as refused:
        verify_signature(BODY, headers(now)["signed with another secret"], SECRET, tolerance=300, now=now)

    assert SECRET not in str(refused.value) and sign(BODY, now) not in str(refused.value)
