"""The HS256 verifier agrees with PyJWT's `jwt.decode` on every token, and is stricter about extensions."""

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from billing.errors import InvalidTokenError
from billing.jws import HS256Verifier, JWSError
from billing.tokens import AUDIENCE, ISSUER, TokenCodec

SECRET = "k" * 40
NOW = 1_800_000_000
REQUIRED = ["sub", "tier", "jti", "iat", "exp", "iss", "aud"]
RESOURCE = "https://mcp.kamiyo.test/mcp"


def pyjwt_accepts(token: str) -> bool:
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], audience=[AUDIENCE, RESOURCE], issuer=ISSUER,
                   options={"require": REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        return False
    return True


def we_accept(token: str) -> bool:
    try:
        TokenCodec(SECRET, audiences=(AUDIENCE, RESOURCE)).verify(token, now=NOW)
    except InvalidTokenError:
        return False
    return True


def segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: Any, payload: Any, key: str = SECRET) -> str:  # any JSON, objects or not
    signing_input = segment(json.dumps(header).encode()) + "." + segment(json.dumps(payload).encode())
    return signing_input + "." + segment(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "usr_1", "tier": "team", "sid": "sub_1", "jti": "tok_1", "iat": NOW, "exp": NOW + 60,
            "iss": ISSUER, "aud": AUDIENCE}
    return {**base, **overrides}


def minted() -> list[str]:
    codec = TokenCodec(SECRET, audiences=(AUDIENCE, RESOURCE))
    return [codec.mint(sub="usr_1", tier="team", sid="sub_1", now=NOW, expires_at=NOW + 60)[0],
            codec.mint(sub="usr_2", tier="personal", sid=None, now=NOW, expires_at=NOW + 60)[0],
            codec.mint(sub="usr_3", tier="enterprise", sid="sub_3", now=NOW, expires_at=NOW + 60, audience=RESOURCE,
                       grant_id="ogr_1")[0]]


def test_minted_tokens_verify_to_the_claims_pyjwt_reads() -> None:
    verifier = HS256Verifier(SECRET)
    for token in minted():
        assert verifier.payload(token) == jwt.decode(token, SECRET, algorithms=["HS256"],
                                                     options={"verify_aud": False, "verify_exp": False,
                                                              "verify_iat": False})
        assert we_accept(token) and pyjwt_accepts(token)


def test_every_one_character_change_of_a_token_is_judged_as_pyjwt_judges_it() -> None:
    changed = 0
    for token in minted():
        for position in range(len(token)):
            # Every character of the base64url alphabet's kinds, both ends (the last character of a segment
            # also has unused bits: a second spelling of the same bytes must be refused), and strangers.
            for replacement in "AQgw_-09.=+/é ":
                if token[position] == replacement:
                    continue
                mutated = token[:position] + replacement + token[position + 1:]
                assert we_accept(mutated) == pyjwt_accepts(mutated), (position, replacement)
                changed += 1
    assert changed > 3 * 13 * 200


@pytest.mark.parametrize(("token", "ours", "theirs"), [
    (signed({"alg": "HS256", "typ": "JWT"}, claims()), True, True),
    (signed({"alg": "HS256"}, claims(aud=[AUDIENCE, "other"])), True, True),
    (signed({"alg": "HS256"}, claims(aud=["other"])), False, False),
    (signed({"alg": "HS256"}, claims(aud=7)), False, False),
    (signed({"alg": "HS256"}, claims(iss=["kamiyo-mcp"])), False, False),
    (signed({"alg": "HS256"}, claims(sub=None)), False, False),
    (signed({"alg": "HS256"}, claims(sub=12)), False, False),
    (signed({"alg": "HS256"}, claims(jti=["tok"])), False, False),
    (signed({"alg": "hs256"}, claims()), False, False),
    (signed({"alg": "none"}, claims()), False, False),
    (signed({"alg": "HS256"}, claims(), key="another-key-of-forty-bytes-000000000000"), False, False),
    (signed({"alg": "HS256"}, ["not", "an", "object"]), False, False),
    (signed(["HS256"], claims()), False, False),
    # Stricter than PyJWT: a header that asks for an extension is refused whatever it asks.
    (signed({"alg": "HS256", "crit": ["exp"]}, claims()), False, False),
    (signed({"alg": "HS256", "b64": True}, claims()), False, True),
], ids=["plain", "audience-list", "foreign-audience", "audience-number", "issuer-list", "no-sub", "sub-number",
        "jti-list", "alg-lowercase", "alg-none", "other-key", "payload-array", "header-array", "crit", "b64"])
def test_hand_built_tokens_are_judged_as_pyjwt_judges_them_or_more_strictly(token: str, ours: bool,
                                                                          theirs: bool) -> None:
    assert (we_accept(token), pyjwt_accepts(token)) == (ours, theirs)


def test_a_second_spelling_of_a_signature_is_refused() -> None:
    token = minted()[0]
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 32-byte signature is 43 characters: the last carries 4 bits and 2 unused ones, so 3 other
    # characters decode to the same bytes.
    index = alphabet.index(last)
    twins = [token[:-1] + alphabet[(index & ~3) | low] for low in range(4) if (index & ~3) | low != index]
    assert len(twins) == 3
    for twin in twins:
        assert not we_accept(twin) and not pyjwt_accepts(twin)


def test_padding_and_characters_outside_base64url_are_malformed() -> None:
    token = minted()[0]
    header, payload, signature = token.split(".")
    verifier = HS256Verifier(SECRET)
    for bad in (f"{header}=.{payload}.{signature}", f"{header}.{payload}.{signature}==",
                f"{header}.{payload}.{signature[:-1]}+", f"{header}.{payload}.{signature} ", f"{header}.{payload}",
                f"{header}.{payload}.{signature}.", "..", f"{header}.{payload}.{signature[:-2]}"):
        with pytest.raises(JWSError) as caught:
            verifier.payload(bad)
        assert caught.value.reason in ("the token is malformed", "the token's signature is not valid"), bad
