"""Verifying a compact HS256 JWS (RFC 7515) with one key: strict, and cheap enough for every cold token.

`jwt.decode` checks each base64url character in a Python loop and prepares the key on every call,
which makes it most of a never-seen token's authorization. This does what it checks for our
tokens with C-level steps: the three segments are canonical base64url without padding (RFC 7515
§2; any other character, or a second spelling of the same bytes, is refused), the header is a JSON
object whose `alg` is exactly HS256 and that asks for no extension (`crit`, `b64`: refused), the
signature is the HMAC-SHA256 of the signing input under the key (compared in constant time), and
only then is the payload read, as a JSON object. The claims themselves (issuer, audience, required
names) are the caller's to check. Minting stays with PyJWT; tests hold both to the same judgement.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

ALGORITHM = "HS256"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = str.maketrans("-_", "+/")


class JWSError(Exception):
    """The token does not verify; `reason` says why (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MALFORMED = "the token is malformed"
ALGORITHM_REFUSED = "the token's algorithm is not accepted"
BAD_SIGNATURE = "the token's signature is not valid"


class HS256Verifier:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def payload(self, token: str) -> dict[str, Any]:
        """The verified token's payload (a JSON object).

        Raises:
            JWSError: malformed, another algorithm or an extension, or a signature that does not verify.
        """
        parts = token.split(".")
        if len(parts) != 3 or not token.isascii():
            raise JWSError(MALFORMED)
        header_part, payload_part, signature_part = parts
        header = _json_object(_decode(header_part))
        if header.get("alg") != ALGORITHM:
            raise JWSError(ALGORITHM_REFUSED)
        if "crit" in header or "b64" in header:
            raise JWSError(MALFORMED)
        signature = _decode(signature_part)
        expected = hmac.new(self._key, f"{header_part}.{payload_part}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise JWSError(BAD_SIGNATURE)
        return _json_object(_decode(payload_part))


def _decode(segment: str) -> bytes:
    """The bytes of a canonical base64url segment: one string per value (the unused low bits of its last
    character zero), so no second spelling of a signed token verifies."""
    if len(segment) % 4 == 1 or _SEGMENT.fullmatch(segment) is None:
        raise JWSError(MALFORMED)
    try:
        raw = base64.b64decode(segment.translate(_TO_STANDARD) + "=" * (-len(segment) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise JWSError(MALFORMED) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise JWSError(MALFORMED)
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JWSError(MALFORMED) from None
    if not isinstance(value, dict):
        raise JWSError(MALFORMED)
    return value
