"""The authority: the one interface that decides "may this caller do this now".

    credential = authority.verify(token)                        # signature, claims, SHA-256: no I/O
    decision = await authority.admit(credential, "monitor_wallet")   # Grant | Denial, one store trip

It also mints, lists, revokes, rotates and re-tiers tokens for the operator. It knows nothing
about MCP; the MCP server's HTTP edge verifies the token once per request and asks `admit` (or
`identify`, for a request that calls no tool) once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from billing.access import UNAUTHENTICATED_REASONS, Denial, DenialCode, Grant, Links, account_refusal, diagnose
from billing.account import account_status, iso
from billing.errors import ConfigurationError, InvalidTokenError, NotFoundError
from billing.quota import windows
from billing.store import Store
from billing.store.records import (
    Admission,
    AuditEntry,
    NewToken,
    TokenRow,
    TokenState,
    new_call_id,
    new_grant_id,
    new_user_id,
)
from billing.tiers import DEFAULT_TIERS, TIERS, TierTable, is_tier
from billing.tokens import EXPIRED, Credential, TokenCodec, token_hash

SECONDS_PER_DAY = 86_400
DEFAULT_SUPPORT_EMAIL = "support@kamiyo.ai"
MAX_TOKEN_DAYS = 3650  # the longest validity an operator grant may be issued for


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated token (it may still be refused by `admit`): its credential and its state."""

    credential: Credential
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
                 support_email: str = DEFAULT_SUPPORT_EMAIL, clock: Callable[[], float] = time.time,
                 tiers: TierTable = DEFAULT_TIERS, overage_sold: bool = False) -> None:
        self.store = store
        self._codec = codec
        self._expiry_days = token_expiry_days
        self._clock = clock
        self.tiers = tiers
        base = public_url.rstrip("/")
        self.links = Links(
            pricing_url=f"{base}/pricing",
            portal_endpoint=f"{base}/api/billing/create-portal-session",
            support_email=support_email,
            tiers=tiers,
            overage_sold=overage_sold,
        )

    def now(self) -> int:
        return int(self._clock())

    # ---- per call --------------------------------------------------------------------------

    def verify(self, token: str) -> Credential:
        """The presented token as a credential: signature, issuer, audience and expiry checked, hashed once.

        Raises:
            InvalidTokenError: malformed, forged or expired.
        """
        return self._codec.credential(token, now=self.now())

    async def identify(self, credential: Credential) -> Identity:
        """The credential's token as the store has it (one read).

        Revoked tokens still identify (so their calls get a useful refusal); rotated-away ones do
        not: the user holds a newer token.

        Raises:
            InvalidTokenError: unknown, or rotated away.
        """
        state = await self.store.token_state(credential.token_hash)
        if state is None:
            raise InvalidTokenError(UNAUTHENTICATED_REASONS[DenialCode.INVALID_TOKEN])
        if state.revoked_reason == "rotated":
            raise InvalidTokenError(UNAUTHENTICATED_REASONS[DenialCode.TOKEN_ROTATED])
        return Identity(credential, state)

    async def authenticate(self, token: str) -> Identity:
        """`identify(verify(token))`: for routes that take a token and call no tool.

        Raises:
            InvalidTokenError: malformed, forged, expired, unknown or rotated away.
        """
        return await self.identify(self.verify(token))

    async def admit(self, credential: Credential, tool: str, *, with_account: bool = False) -> Grant | Denial:
        """Admit and count one call of `tool`, or say why not: one trip to the store decides and counts it
        and reads what a refusal explains — and, `with_account`, what the account view shows."""
        now = self.now()
        needed = self.tiers.min_tier_for(tool)
        call_id = new_call_id()
        admission = await self.store.admit_call(credential.token_hash, now=now,
                                                min_rank=int(needed.rank) if needed else 0, call_id=call_id,
                                                with_state=with_account)
        return await self._decision(admission, credential, tool, now, call_id)

    async def authorize(self, token: str, tool: str, *, with_account: bool = True) -> Grant | Denial:
        """`admit(verify(token), tool)`, with a token that does not verify as a denial."""
        try:
            credential = self.verify(token)
        except InvalidTokenError as exc:
            return self.unverified(exc)
        return await self.admit(credential, tool, with_account=with_account)

    def unverified(self, error: InvalidTokenError) -> Denial:
        """The refusal of a call whose token did not verify."""
        if error.reason == EXPIRED:
            return Denial(DenialCode.TOKEN_EXPIRED, "This token has expired. If your subscription is still active, "
                          f"contact {self.links.support_email} for a new token; otherwise subscribe again at "
                          f"{self.links.pricing_url}.", 401)
        return Denial(DenialCode.INVALID_TOKEN, f"The access token is not valid: {error.reason}.", 401)

    def account_refusal(self, identity: Identity) -> Denial | None:
        """Why this token may make no call at all now (revoked, expired, subscription ended), or None."""
        return account_refusal(identity.state, now=self.now(), links=self.links)

    async def refund(self, grant: Grant) -> None:
        """Give back a counted call that never reached its tool (a request refused after it was admitted);
        a metered one is not billed either."""
        await self.store.refund_call(grant.subscription_id, windows(grant.decided_at),
                                     metered_call=grant.call_id if grant.metered else None, now=self.now())

    async def void(self, grant: Grant) -> None:
        """The call reached its tool and failed there: it stays counted, but a metered one is not billed
        (its meter event is not sent, or is cancelled at Stripe)."""
        if grant.metered:
            await self.store.void_meter_event(grant.call_id, now=self.now())

    def account_status(self, grant: Grant) -> dict[str, object]:
        """What `get_account_status` shows: a pure view of the call's grant."""
        return account_status(grant, self.links)

    async def _decision(self, admission: Admission, credential: Credential, tool: str, now: int,
                        call_id: str) -> Grant | Denial:
        counted, state = admission.counted, admission.state
        if counted is not None:
            return Grant(counted.subscription_id, self.tiers[counted.tier], counted.minute_count, counted.day_count,
                         now, state, call_id=call_id, metered=counted.metered, overage_used=counted.overage_count,
                         overage_limit=counted.overage_limit)
        denial = diagnose(state, tool=tool, now=now, links=self.links)
        if denial.code == DenialCode.RETRY:
            # The state read with the refusal predates a concurrent commit that refused it (PostgreSQL's
            # snapshot): a fresh read names the real reason.
            fresh = await self.store.token_state(credential.token_hash)
            denial = diagnose(fresh, tool=tool, now=now, links=self.links)
        return denial

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
        """Replace a live token by a new one with the same entitlement and the same expiry.

        A rotation replaces a credential; it never extends what the grant allows.

        Raises:
            NotFoundError: no live token `token_id` (unknown, revoked, or expired).
        """
        row = await self.store.get_token(token_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"no live token {token_id}")
        now = self.now()
        if row.expires_at <= now:
            raise NotFoundError(f"token {token_id} expired on {iso(row.expires_at)}; a rotation keeps the expiry, "
                                "so issue a new grant instead")
        expires_at = row.expires_at
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
