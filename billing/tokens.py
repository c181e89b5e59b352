"""Access tokens: JWT HS256 minting and verification. Pure, no I/O.

A token authenticates only if signature, issuer, audience and expiry verify and it is HS256;
whether it is still *entitled* is the store's business (see authority.py). The plaintext token is
returned once by `mint` and never stored: the store keeps `token_hash(token)`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from billing.errors import ConfigurationError, InvalidTokenError

ALGORITHM = "HS256"
ISSUER = "kamiyo-mcp"
AUDIENCE = "kamiyo-mcp"
MIN_SECRET_BYTES = 32
EXPIRED = "the token has expired"
_REQUIRED_CLAIMS = ["sub", "tier", "jti", "iat", "exp", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    tier: str
    sid: str | None
    jti: str
    iat: int
    exp: int


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token_id() -> str:
    return "tok_" + uuid.uuid4().hex


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


class TokenCodec:
    """Mints and verifies tokens with one secret.

    Verified signatures are remembered (bounded LRU): HMAC verification is the costliest step of
    a tool call's authorization, and a signature that was valid stays valid. Expiry is rechecked
    on every call and revocation is the store's, so the memo never admits a token the store refuses.
    """

    def __init__(self, secret: str, *, cache_size: int = 4096, audiences: tuple[str, ...] = ()) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = secret
        # Bearer tokens name AUDIENCE; OAuth access tokens name the resource they were minted for
        # (RFC 8707), so a token minted for another server's resource is refused here.
        self._audiences = [AUDIENCE, *(a for a in audiences if a != AUDIENCE)]
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._cache_size = cache_size

    def mint(self, *, sub: str, tier: str, sid: str | None, now: int, expires_at: int,
             audience: str = AUDIENCE) -> tuple[str, Claims]:
        """A new token and its claims; `audience` is the resource an OAuth access token is for."""
        if audience not in self._audiences:
            raise ConfigurationError(f"this codec does not accept tokens for the audience {audience!r}")
        claims = Claims(sub=sub, tier=tier, sid=sid, jti=new_token_id(), iat=now, exp=expires_at)
        payload = {
            "sub": claims.sub,
            "tier": claims.tier,
            "sid": claims.sid,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "iss": ISSUER,
            "aud": audience,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def verify(self, token: str, *, now: int) -> Claims:
        """The token's claims.

        Raises:
            InvalidTokenError: malformed, forged, wrong algorithm/issuer/audience, or expired.
        """
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        if claims.exp <= now:
            raise InvalidTokenError(EXPIRED)
        return claims

    def _decode(self, token: str) -> Claims:
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 4096:
            raise InvalidTokenError("the token is malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("the token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("the token's algorithm is not accepted")
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._audiences,
                issuer=ISSUER,
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(_describe(exc)) from None
        try:
            return Claims(
                sub=str(payload["sub"]),
                tier=str(payload["tier"]),
                sid=None if payload.get("sid") is None else str(payload["sid"]),
                jti=str(payload["jti"]),
                iat=int(payload["iat"]),
                exp=int(payload["exp"]),
            )
        except (TypeError, ValueError):
            raise InvalidTokenError("the token's claims are malformed") from None


def _describe(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature is not valid"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token was issued for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token was issued by another issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim!r} claim"
    if isinstance(exc, jwt.DecodeError):
        return "the token is malformed"
    return "the token is not valid"
