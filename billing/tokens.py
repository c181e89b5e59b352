"""Access tokens: JWT HS256 minting and verification. Pure, no I/O.

A token authenticates only if signature, issuer, audience and expiry verify and it is HS256;
whether it is still *entitled* is the store's business (see authority.py). The plaintext token is
returned once by `mint` and never stored: the store keeps `token_hash(token)`, and verification
turns a presented token into a `Credential` (its hash and claims) so that nothing past the edge
that received it needs to hold the token itself.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

from billing.errors import ConfigurationError, InvalidTokenError
from billing.jws import HS256Verifier, JWSError

ALGORITHM = "HS256"
ISSUER = "kamiyo-mcp"
AUDIENCE = "kamiyo-mcp"
MIN_SECRET_BYTES = 32
EXPIRED = "the token has expired"
MAX_TOKEN_CHARS = 4096
_REQUIRED_CLAIMS = ["sub", "tier", "jti", "iat", "exp", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    tier: str
    sid: str | None
    jti: str
    iat: int
    exp: int
    gid: str | None = None  # an OAuth access token's grant: the one principal of all its refreshed tokens

    @property
    def principal(self) -> str:
        """Who holds the token, stable across an OAuth grant's refreshes: the grant, else the token itself."""
        return self.gid or self.jti


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer token whose signature, issuer, audience and expiry verified: its store key and claims.

    It stands in for the token past the edge that received it; the token itself is not kept.
    """

    token_hash: str
    claims: Claims


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token_id() -> str:
    return "tok_" + uuid.uuid4().hex


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


class TokenCodec:
    """Mints and verifies tokens with one secret, for one or more audiences.

    Verified tokens are remembered by their SHA-256 (a bounded LRU of claims; never the token):
    HMAC verification is the costliest step of authorizing a call, and a signature that was valid
    stays valid. Expiry is rechecked on every call and revocation is the store's, so the memo never
    admits a token the store refuses. `audiences` are the `aud` values accepted (the first is the
    one minted); a credential kind with another audience (OAuth access tokens for the resource URL)
    is accepted by adding it.
    """

    def __init__(self, secret: str, *, audiences: Sequence[str] = (AUDIENCE,), cache_size: int = 32_768) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        if not audiences:
            raise ConfigurationError("at least one token audience is needed")
        self._key = secret
        self._verifier = HS256Verifier(secret)
        self._audiences = list(audiences)
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def mint(self, *, sub: str, tier: str, sid: str | None, now: int, expires_at: int,
             audience: str | None = None, grant_id: str | None = None) -> tuple[str, Claims]:
        """A new token and its claims; an OAuth access token names the resource it is for (`audience`,
        RFC 8707) and its grant."""
        if audience is not None and audience not in self._audiences:
            raise ConfigurationError(f"this codec does not accept tokens for the audience {audience!r}")
        claims = Claims(sub=sub, tier=tier, sid=sid, jti=new_token_id(), iat=now, exp=expires_at, gid=grant_id)
        payload: dict[str, object] = {
            "sub": claims.sub,
            "tier": claims.tier,
            "sid": claims.sid,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "iss": ISSUER,
            "aud": self._audiences[0] if audience is None else audience,
        }
        if grant_id is not None:
            payload["gid"] = grant_id
        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def verify(self, token: str, *, now: int) -> Claims:
        """The token's claims.

        Raises:
            InvalidTokenError: malformed, forged, wrong algorithm/issuer/audience, or expired.
        """
        return self.credential(token, now=now).claims

    def credential(self, token: str, *, now: int) -> Credential:
        """The verified token as a `Credential` (hashed once here; the hash keys both memo and store).

        Raises:
            InvalidTokenError: malformed, forged, wrong algorithm/issuer/audience, or expired.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError("the token is malformed")
        digest = token_hash(token)
        claims = self._cache.get(digest)
        if claims is None:
            claims = self._decode(token)
            self._cache[digest] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(digest)
        if claims.exp <= now:
            raise InvalidTokenError(EXPIRED)
        return Credential(digest, claims)

    def _decode(self, token: str) -> Claims:
        """The claims of a token whose signature verifies (`billing.jws`: what `jwt.decode` checks, minus
        the cost), issued by us for one of our audiences, with every required claim.

        Raises:
            InvalidTokenError: a token that does not verify, with the reason.
        """
        try:
            payload = self._verifier.payload(token)
        except JWSError as exc:
            raise InvalidTokenError(exc.reason) from None
        for name in _REQUIRED_CLAIMS:
            if payload.get(name) is None:
                raise InvalidTokenError(f"the token lacks the {name!r} claim")
        if payload["iss"] != ISSUER:
            raise InvalidTokenError("the token was issued by another issuer")
        audience = payload["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences) \
                or not any(a in audiences for a in self._audiences):
            raise InvalidTokenError("the token was issued for another audience")
        sub, jti, sid, gid = payload["sub"], payload["jti"], payload.get("sid"), payload.get("gid")
        if not isinstance(sub, str) or not isinstance(jti, str):
            raise InvalidTokenError("the token's claims are malformed")
        try:
            return Claims(sub=sub, tier=str(payload["tier"]), sid=None if sid is None else str(sid), jti=jti,
                          iat=int(payload["iat"]), exp=int(payload["exp"]), gid=None if gid is None else str(gid))
        except (TypeError, ValueError, OverflowError):
            raise InvalidTokenError("the token's claims are malformed") from None

