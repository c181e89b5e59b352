"""Rows of the OAuth tables the store hands out: plain frozen dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredClient:
    client_id: str
    kind: str
    client_name: str | None
    metadata: str  # JSON, without any secret
    secret_hash: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class ClientSummary:
    client_id: str
    kind: str
    client_name: str | None
    created_at: int
    grants: int
    live_grants: int


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """An authorization request between /authorize and the consent."""

    request_id: str
    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    state: str | None
    scopes: str
    resource: str
    created_at: int
    expires_at: int
    email: str | None = None
    user_id: str | None = None
    subscription_id: str | None = None
    session_hash: str | None = None
    signed_in_by: str | None = None
    signed_in_at: int | None = None
    completed_at: int | None = None


@dataclass(frozen=True, slots=True)
class SignInLink:
    link_id: str
    link_hash: str | None  # None until its mail is sent
    request_id: str
    email: str
    created_at: int
    expires_at: int
    used_at: int | None


@dataclass(frozen=True, slots=True)
class ReservedLink:
    """A sign-in link as its mail's composer sees it, with its request's state."""

    link: SignInLink
    request_open_until: int  # the request's expiry; 0 once it was completed


@dataclass(frozen=True, slots=True)
class Entitlement:
    """A subscription as sign-in and the token endpoint judge it."""

    subscription_id: str
    user_id: str
    email: str
    kind: str
    tier: str
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    live_until: int | None  # an operator grant ('grant' kind): the latest expiry of its live bearer tokens


@dataclass(frozen=True, slots=True)
class StoredCode:
    code_hash: str
    client_id: str
    user_id: str
    subscription_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    scopes: str
    resource: str
    created_at: int
    expires_at: int
    used_at: int | None
    grant_id: str | None


@dataclass(frozen=True, slots=True)
class StoredGrant:
    grant_id: str
    client_id: str
    user_id: str
    subscription_id: str
    scopes: str
    resource: str
    created_at: int
    refreshed_at: int | None
    revoked_at: int | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class StoredRefresh:
    token_hash: str
    grant_id: str
    created_at: int
    expires_at: int
    used_at: int | None


@dataclass(frozen=True, slots=True)
class GrantSummary:
    """A grant as the operator lists it."""

    grant_id: str
    client_id: str
    client_name: str | None
    email: str
    subscription_id: str
    tier: str
    subscription_status: str
    created_at: int
    refreshed_at: int | None
    revoked_at: int | None
    revoked_reason: str | None
    live_access_tokens: int


@dataclass(frozen=True, slots=True)
class AccessRow:
    """An OAuth access token's row, with the client its grant belongs to."""

    token_id: str
    grant_id: str
    client_id: str
    scopes: str
    resource: str
    expires_at: int
    revoked_at: int | None
