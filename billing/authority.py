"""The authority: the one interface that decides "may this caller do this now".

    decision = await authority.authorize(token, tool="monitor_wallet")   # Grant | Denial

It also mints, lists, revokes, rotates and re-tiers tokens for the operator. It knows nothing
about MCP; the MCP server asks it on every tool call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from billing.access import Denial, Grant, Links, diagnose, subscription_grants_access
from billing.errors import ConfigurationError, InvalidTokenError, NotFoundError
from billing.store import Store
from billing.store.records import AuditEntry, NewToken, TokenRow, TokenState, new_grant_id, new_user_id
from billing.tiers import TIERS, get_tier, is_tier, min_tier_for
from billing.tokens import EXPIRED, Claims, TokenCodec, token_hash

SECONDS_PER_DAY = 86_400
MAX_TOKEN_DAYS = 3650  # the longest validity an operator grant may be issued for


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated token (it may still be refused by `authorize`)."""

    claims: Claims
    state: TokenState


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly minted token: `token` is shown once and never stored."""

    token: str
    token_id: str
    user_id: str
    subscription_id: str
    tier: str
    expires_at: int


class Authority:
    def __init__(self, store: Store, codec: TokenCodec, *, public_url: str, token_expiry_days: int = 365,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._codec = codec
        self._expiry_days = token_expiry_days
        self._clock = clock
        base = public_url.rstrip("/")
        self.links = Links(
            pricing_url=f"{base}/pricing",
            portal_hint=f"manage billing through POST {base}/api/billing/create-portal-session",
        )

    def now(self) -> int:
        return int(self._clock())

    # ---- per call --------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Identity:
        """Check that `token` is one we minted and have not replaced.

        Revoked tokens still authenticate (so their calls get a useful refusal); rotated-away ones
        do not: the user holds a newer token.

        Raises:
            InvalidTokenError: malformed, forged, expired, unknown or rotated away.
        """
        now = self.now()
        claims = self._codec.verify(token, now=now)
        state = await self.store.token_state(token_hash(token))
        if state is None:
            raise InvalidTokenError("the token is not recognised")
        if state.revoked_reason == "rotated":
            raise InvalidTokenError("the token was replaced by a newer one")
        return Identity(claims, state)

    async def authorize(self, token: str, tool: str) -> Grant | Denial:
        """Admit and count one call of `tool`, or say why not."""
        now = self.now()
        try:
            claims = self._codec.verify(token, now=now)
        except InvalidTokenError as exc:
            if exc.reason == EXPIRED:
                return Denial("token_expired", "This token has expired. If your subscription is still active, "
                              "contact support for a new token; otherwise subscribe again at "
                              f"{self.links.pricing_url}.", 401)
            return Denial("invalid_token", f"The access token is not valid: {exc.reason}.", 401)
        needed = min_tier_for(tool)
        digest = token_hash(token)
        counted = await self.store.consume_call(digest, now=now, min_rank=int(needed.rank) if needed else 0)
        if counted is not None:
            return Grant(
                user_id=claims.sub,
                subscription_id=counted.subscription_id,
                tier=get_tier(counted.tier),
                minute_used=counted.minute_count,
                minute_limit=counted.minute_limit,
                day_used=counted.day_count,
                day_limit=counted.day_limit,
            )
        state = await self.store.token_state(digest)
        return diagnose(state, tool=tool, now=now, links=self.links)

    async def account_status(self, token: str) -> dict[str, object]:
        """What `get_account_status` shows: tier, subscription, expiry, usage and where to go next.

        Raises:
            InvalidTokenError: the token does not authenticate.
        """
        return self.status_of(await self.authenticate(token))

    def status_of(self, identity: Identity) -> dict[str, object]:
        """The account status of an already authenticated token."""
        state, now = identity.state, self.now()
        tier = TIERS.get(state.tier)
        minute, day = now - now % 60, now - now % SECONDS_PER_DAY
        minute_used = state.minute_count if state.minute_start == minute else 0
        day_used = state.day_count if state.day_start == day else 0
        status: dict[str, object] = {
            "tier": state.tier,
            "email": state.email,
            "subscription": {
                "kind": "operator_grant" if state.kind == "grant" else "stripe",
                "status": state.status,
                "access": subscription_grants_access(state, now) and state.revoked_at is None,
                "past_due": state.status == "past_due",
                "cancel_at_period_end": state.cancel_at_period_end,
                "current_period_end": _iso(state.current_period_end),
            },
            "token": {
                "token_id": state.token_id,
                "expires_at": _iso(state.expires_at),
                "revoked": state.revoked_at is not None,
                "revoked_reason": state.revoked_reason,
            },
            "upgrade_url": self.links.pricing_url,
            "manage_billing": self.links.portal_hint,
        }
        if tier is not None:
            status["usage"] = {
                "calls_this_minute": minute_used,
                "calls_left_this_minute": max(tier.calls_per_minute - minute_used, 0),
                "minute_resets_at": _iso(minute + 60),
                "calls_today": day_used,
                "calls_left_today": max(tier.calls_per_day - day_used, 0),
                "day_resets_at": _iso(day + SECONDS_PER_DAY),
            }
            status["limits"] = {
                "calls_per_minute": tier.calls_per_minute,
                "calls_per_day": tier.calls_per_day,
                "search_results_per_call": tier.search_results_per_call,
                "monitor_wallet": tier.monitor_wallet,
                "risk_detail": tier.risk_detail,
            }
        return status

    # ---- operator actions ------------------------------------------------------------------

    async def issue_grant(self, email: str, tier: str, *, days: int | None = None,
                          actor: str = "operator") -> IssuedToken:
        """Create an operator grant for `email` at `tier` and mint its token.

        Raises:
            ConfigurationError: unknown tier, bad email or a non-positive number of days.
        """
        email = normalize_email(email)
        _check_tier(tier)
        days = self._expiry_days if days is None else days
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise ConfigurationError(f"days must be between 1 and {MAX_TOKEN_DAYS}")
        now = self.now()
        user_id = await self.store.find_user_id(email) or new_user_id()
        subscription_id = new_grant_id()
        expires_at = now + days * SECONDS_PER_DAY
        token, claims = self._codec.mint(sub=user_id, tier=tier, sid=subscription_id, now=now,
                                         expires_at=expires_at)
        new = NewToken(claims.jti, user_id, subscription_id, token_hash(token), now, expires_at)
        # Customer, grant, token and audit rows land in one transaction, or none of them do.
        await self.store.create_grant(
            email, tier, new, now=now,
            audit=AuditEntry(actor, "grant.create", subscription_id, f"tier={tier} token={claims.jti}"),
        )
        return IssuedToken(token, claims.jti, user_id, subscription_id, tier, expires_at)

    async def mint_for(self, user_id: str, subscription_id: str, tier: str, *, days: int | None = None,
                       actor: str, now: int | None = None) -> IssuedToken:
        """Mint a token for an existing entitlement."""
        now = self.now() if now is None else now
        expires_at = now + (self._expiry_days if days is None else days) * SECONDS_PER_DAY
        token, claims = self._codec.mint(sub=user_id, tier=tier, sid=subscription_id, now=now,
                                         expires_at=expires_at)
        new = NewToken(claims.jti, user_id, subscription_id, token_hash(token), now, expires_at)
        await self.store.insert_token(new, now=now, audit=AuditEntry(actor, "token.issue", claims.jti,
                                                                     f"subscription={subscription_id}"))
        return IssuedToken(token, claims.jti, user_id, subscription_id, tier, expires_at)

    async def list_tokens(self, email: str | None = None) -> list[TokenRow]:
        return await self.store.list_tokens(normalize_email(email) if email else None)

    async def revoke(self, token_id: str, *, reason: str = "revoked by operator", actor: str = "operator") -> bool:
        """Revoke a token; False when it already was.

        Raises:
            NotFoundError: no such token.
        """
        return await self.store.revoke_token(
            token_id, reason, now=self.now(), audit=AuditEntry(actor, "token.revoke", token_id, reason)
        )

    async def rotate(self, token_id: str, *, actor: str = "operator") -> IssuedToken:
        """Replace a live token by a new one with the same entitlement and a fresh expiry.

        Raises:
            NotFoundError: no live token `token_id`.
        """
        row = await self.store.get_token(token_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"no live token {token_id}")
        now = self.now()
        expires_at = now + self._expiry_days * SECONDS_PER_DAY
        token, claims = self._codec.mint(sub=row.user_id, tier=row.tier, sid=row.subscription_id, now=now,
                                         expires_at=expires_at)
        new = NewToken(claims.jti, row.user_id, row.subscription_id, token_hash(token), now, expires_at)
        await self.store.rotate_token(token_id, new, now=now,
                                      audit=AuditEntry(actor, "token.rotate", token_id, f"new={claims.jti}"))
        return IssuedToken(token, claims.jti, row.user_id, row.subscription_id, row.tier, expires_at)

    async def set_tier(self, token_id: str, tier: str, *, actor: str = "operator") -> TokenRow:
        """Re-tier the operator grant behind a token (Stripe subscriptions follow Stripe).

        Raises:
            NotFoundError: no such token.
            ConfigurationError: unknown tier, or the token belongs to a Stripe subscription.
        """
        _check_tier(tier)
        row = await self.store.get_token(token_id)
        if row is None:
            raise NotFoundError(f"no token {token_id}")
        if not row.subscription_id.startswith("grant_"):
            raise ConfigurationError(
                "this token belongs to a Stripe subscription: change its plan in Stripe (the webhook applies it)"
            )
        await self.store.set_subscription_tier(
            row.subscription_id, tier, now=self.now(),
            audit=AuditEntry(actor, "grant.set_tier", row.subscription_id, f"{row.tier}->{tier}"),
        )
        updated = await self.store.get_token(token_id)
        assert updated is not None
        return updated


def normalize_email(email: str) -> str:
    """Trimmed, lower-cased email.

    Raises:
        ConfigurationError: not an email address.
    """
    value = (email or "").strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or len(value) > 254 or domain.startswith("."):
        raise ConfigurationError(f"not a valid email address: {email!r}")
    return value


def _check_tier(tier: str) -> None:
    if not is_tier(tier):
        raise ConfigurationError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
