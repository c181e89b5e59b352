import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from billing.errors import ConfigurationError, InvalidTokenError
from billing.tokens import AUDIENCE, ISSUER, TokenCodec, token_hash

SECRET = "s" * 40
NOW = 1_800_000_000


def codec() -> TokenCodec:
    return TokenCodec(SECRET)


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "usr_1", "tier": "team", "sid": "grant_1", "jti": "tok_1", "iat": NOW,
                               "exp": NOW + 3600, "iss": ISSUER, "aud": AUDIENCE}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_minted_token_verifies_with_its_claims() -> None:
    token, minted = codec().mint(sub="usr_1", tier="team", sid="grant_1", now=NOW, expires_at=NOW + 60)
    verified = codec().verify(token, now=NOW + 1)
    assert verified == minted
    assert verified.jti.startswith("tok_") and verified.tier == "team" and verified.sid == "grant_1"


def test_the_stored_hash_is_the_sha256_of_the_token_and_not_the_token() -> None:
    token, _ = codec().mint(sub="u", tier="team", sid=None, now=NOW, expires_at=NOW + 60)
    digest = token_hash(token)
    assert len(digest) == 64 and token not in digest


def test_a_secret_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        TokenCodec("short")


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: jwt.encode(claims(), "another-secret-of-at-least-32-bytes!!", algorithm="HS256"), "signature"),
        (lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512"), "algorithm"),
        (lambda: b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".", "algorithm"),
        (lambda: jwt.encode(claims(iss="someone-else"), SECRET, algorithm="HS256"), "issuer"),
        (lambda: jwt.encode(claims(aud="another-api"), SECRET, algorithm="HS256"), "audience"),
        (lambda: jwt.encode(claims(exp=NOW - 1), SECRET, algorithm="HS256"), "expired"),
        (lambda: jwt.encode(claims(jti=None), SECRET, algorithm="HS256"), "jti"),
        (lambda: "not-a-jwt", "malformed"),
        (lambda: "a.b.c", "malformed"),
        (lambda: "", "malformed"),
    ],
    ids=["forged", "hs512", "alg-none", "wrong-issuer", "wrong-audience", "expired", "no-jti", "garbage",
         "three-dots", "empty"],
)
def test_a_bad_token_is_refused_with_a_reason_that_does_not_echo_it(token_factory, reason: str) -> None:
    token = token_factory()
    with pytest.raises(InvalidTokenError) as caught:
        codec().verify(token, now=NOW)
    assert reason in caught.value.reason
    if token:
        assert token not in str(caught.value)


def test_an_rs256_token_is_refused_even_when_its_key_is_known() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), key, algorithm="RS256")
    with pytest.raises(InvalidTokenError, match="algorithm"):
        codec().verify(token, now=NOW)


def test_a_remembered_signature_still_expires() -> None:
    c = codec()
    token, _ = c.mint(sub="u", tier="team", sid=None, now=NOW, expires_at=NOW + 60)
    c.verify(token, now=NOW)
    with pytest.raises(InvalidTokenError, match="expired"):
        c.verify(token, now=NOW + 60)


def test_tokens_minted_now_verify_against_the_real_clock() -> None:
    now = int(time.time())
    token, _ = codec().mint(sub="u", tier="personal", sid=None, now=now, expires_at=now + 10)
    assert codec().verify(token, now=now).sub == "u"


def test_an_oauth_access_token_names_its_resource_and_its_grant_as_the_principal() -> None:
    resource = "https://mcp.kamiyo.test/mcp"
    codec = TokenCodec(SECRET, audiences=(AUDIENCE, resource))
    access, _ = codec.mint(sub="usr_1", tier="team", sid="sub_1", now=NOW, expires_at=NOW + 3600,
                           audience=resource, grant_id="ogr_1")
    bearer, minted = codec.mint(sub="usr_1", tier="team", sid="sub_1", now=NOW, expires_at=NOW + 3600)
    assert codec.verify(access, now=NOW).principal == "ogr_1"  # the same after every refresh
    assert codec.verify(bearer, now=NOW).principal == minted.jti
    elsewhere = TokenCodec(SECRET)  # a server for another resource refuses it
    with pytest.raises(InvalidTokenError, match="another audience"):
        elsewhere.verify(access, now=NOW)
    with pytest.raises(ConfigurationError):
        codec.mint(sub="u", tier="team", sid=None, now=NOW, expires_at=NOW + 1, audience="https://other.test/mcp")
