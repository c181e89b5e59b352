"""OAuth grants on both backends: one authority for OAuth and bearer credentials, single-use codes,
refresh rotation with reuse detection, revocation on the next call.

The provider and the sign-in flow run on the real store; the access tokens are then judged by
`Authority.authorize`, the same statement every bearer token goes through.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from mcp.server.auth.provider import AuthorizationParams, TokenError
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from billing.access import Denial, Grant
from billing.authority import Authority, IssuedToken
from billing.claims import claim_hash
from billing.config import OAuthConfig
from billing.oauth.metadata_doc import MetadataDocuments
from billing.oauth.provider import KamiyoRefreshToken, OAuthProvider
from billing.oauth.secret import secret_hash
from billing.oauth.sign_in import SignIn, SignInError, best_entitlement
from billing.store import AnyStore
from billing.store.delivery_sql import reserve_email_claim
from billing.store.oauth_records import StoredRefresh
from billing.store.records import AuditEntry
from billing.subscription_state import SubscriptionState
from billing.tokens import AUDIENCE, TokenCodec
from tests.support import JWT_SECRET

ISSUER = "https://kamiyo.test"
RESOURCE = ISSUER + "/mcp"
REDIRECT = "http://127.0.0.1:40123/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636's example: S256 of VERIFIER
VERIFIER = "dBjftJeZ4CVP-mJ92K9ZYfYkm1yaE6VT6SRkxr8Er0M"
SESSION = secret_hash("kbs_" + "s" * 43)


@dataclass
class World:
    store: AnyStore
    authority: Authority
    provider: OAuthProvider
    sign_in: SignIn
    client: OAuthClientInformationFull
    bearer: IssuedToken


@pytest.fixture
async def world(store: AnyStore) -> World:
    codec = TokenCodec(JWT_SECRET, audiences=(AUDIENCE, RESOURCE))
    authority = Authority(store, codec, public_url=ISSUER)
    provider = OAuthProvider(store, codec, issuer=ISSUER, resource=RESOURCE, config=OAuthConfig(),
                             documents=MetadataDocuments(), sign_in_url=ISSUER + "/oauth/sign-in")
    sign_in = SignIn(store, authority, provider, public_url=ISSUER, support_email="help@kamiyo.test",
                     config=OAuthConfig())
    registered = OAuthClientInformationFull(client_id="client-1", client_name="Test App",
                                            redirect_uris=[AnyUrl(REDIRECT)], token_endpoint_auth_method="none")
    await provider.register_client(registered)
    client = await provider.get_client("client-1")
    assert client is not None
    bearer = await authority.issue_grant("owner@example.com", "team")
    return World(store, authority, provider, sign_in, client, bearer)


async def approved_code(world: World, token: str | None = None) -> str:
    """An authorization: /authorize, sign-in with a KAMIYO token (the owner's), consent; returns the code."""
    location = await world.provider.authorize(world.client, AuthorizationParams(
        state="st", scopes=["mcp"], code_challenge=CHALLENGE, redirect_uri=AnyUrl(REDIRECT),
        redirect_uri_provided_explicitly=True, resource=RESOURCE))
    request_id = location.split("request=")[1]
    await world.sign_in.use_secret(request_id, token or world.bearer.token, SESSION)
    back = await world.sign_in.approve(request_id, SESSION)
    assert back.startswith(REDIRECT + "?code=kac_") and "state=st" in back
    return back.split("code=")[1].split("&")[0]


async def exchange(world: World, code: str) -> OAuthToken:
    loaded = await world.provider.load_authorization_code(world.client, code)
    assert loaded is not None
    return await world.provider.exchange_authorization_code(world.client, loaded)


async def refresh(world: World, token: str) -> OAuthToken:
    loaded = await world.provider.load_refresh_token(world.client, token)
    assert isinstance(loaded, KamiyoRefreshToken)
    return await world.provider.exchange_refresh_token(world.client, loaded, loaded.scopes)


async def test_an_access_token_is_judged_like_the_bearer_token_and_shares_its_quota(world: World) -> None:
    tokens = await exchange(world, await approved_code(world))
    by_oauth = await world.authority.authorize(tokens.access_token, "monitor_wallet")
    by_bearer = await world.authority.authorize(world.bearer.token, "monitor_wallet")
    assert isinstance(by_oauth, Grant) and isinstance(by_bearer, Grant)
    assert by_oauth.subscription_id == by_bearer.subscription_id == world.bearer.subscription_id
    assert by_oauth.tier.name == "team"
    assert by_bearer.minute_used == by_oauth.minute_used + 1  # one quota for both credentials
    await world.authority.set_tier(world.bearer.token_id, "personal")
    downgraded = await world.authority.authorize(tokens.access_token, "monitor_wallet")
    assert isinstance(downgraded, Denial) and downgraded.code == "tier_required"  # no new sign-in needed


async def test_a_replayed_code_is_refused_and_ends_what_its_first_exchange_gave(world: World) -> None:
    code = await approved_code(world)
    tokens = await exchange(world, code)
    with pytest.raises(TokenError) as replay:
        await exchange(world, code)
    assert replay.value.error == "invalid_grant" and "already used" in (replay.value.error_description or "")
    refused = await world.authority.authorize(tokens.access_token, "get_account_status")
    assert isinstance(refused, Denial) and refused.code == "token_revoked"
    assert tokens.refresh_token is not None
    with pytest.raises(TokenError):
        await refresh(world, tokens.refresh_token)
    assert "oauth.code_replay" in [row["action"] for row in await world.store.audit_entries()]


async def test_refresh_rotates_and_a_reused_refresh_token_kills_the_family(world: World) -> None:
    first = await exchange(world, await approved_code(world))
    assert first.refresh_token is not None
    second = await refresh(world, first.refresh_token)
    assert second.refresh_token is not None and second.refresh_token != first.refresh_token
    assert isinstance(await world.authority.authorize(second.access_token, "get_account_status"), Grant)

    with pytest.raises(TokenError) as reuse:
        await refresh(world, first.refresh_token)  # the old one again: stolen, or a replaying attacker
    assert reuse.value.error == "invalid_grant" and "already used" in (reuse.value.error_description or "")
    for access in (first.access_token, second.access_token):
        denied = await world.authority.authorize(access, "get_account_status")
        assert isinstance(denied, Denial) and denied.code == "token_revoked"
    with pytest.raises(TokenError) as after:
        await refresh(world, second.refresh_token)  # the family is dead: the newest one too
    assert "revoked (refresh token reused)" in (after.value.error_description or "")
    actions = [row["action"] for row in await world.store.audit_entries()]
    assert actions.count("oauth.refresh") == 1 and "oauth.refresh_reuse" in actions


async def test_an_operator_revocation_ends_access_and_refresh_on_the_next_call(world: World) -> None:
    tokens = await exchange(world, await approved_code(world))
    (grant,) = await world.store.list_oauth_grants("owner@example.com", now=world.authority.now())
    assert grant.live_access_tokens == 1 and grant.client_name == "Test App"
    assert await world.store.revoke_oauth_grant(grant.grant_id, "revoked by operator", now=world.authority.now(),
                                                audit=AuditEntry("cli", "oauth.revoke", grant.grant_id))
    denied = await world.authority.authorize(tokens.access_token, "get_account_status")
    assert isinstance(denied, Denial) and denied.code == "token_revoked" and "revoked by operator" in denied.message
    assert tokens.refresh_token is not None
    with pytest.raises(TokenError):
        await refresh(world, tokens.refresh_token)
    assert isinstance(await world.authority.authorize(world.bearer.token, "get_account_status"), Grant)


async def test_only_hashes_of_the_flow_secrets_are_stored(world: World) -> None:
    tokens = await exchange(world, await approved_code(world))
    dumped = []
    for table in ("oauth_codes", "oauth_refresh_tokens", "oauth_grants", "oauth_requests", "tokens", "oauth_clients"):
        rows = await world.store._read.execute_fetchall(f"SELECT * FROM {table}")
        dumped.append(repr([tuple(row) for row in rows]))
    everything = "\n".join(dumped)
    assert tokens.access_token not in everything and (tokens.refresh_token or "x") not in everything
    assert world.bearer.token not in everything


async def test_an_ended_subscription_refuses_access_and_refresh_on_their_next_use(world: World) -> None:
    tokens = await exchange(world, await approved_code(world))
    sub = world.bearer.subscription_id
    async with world.store.webhook_transaction(world.authority.now()) as tx:  # what the deletion webhook writes
        row = await tx.subscription(sub)
        assert row is not None
        await tx.write_subscription(sub, row.user_id, SubscriptionState("team", "canceled", None, False, 1))
        await tx.revoke_subscription_tokens(sub, "subscription_ended")
    denied = await world.authority.authorize(tokens.access_token, "get_account_status")
    assert isinstance(denied, Denial) and denied.code == "subscription_ended"
    assert tokens.refresh_token is not None
    with pytest.raises(TokenError) as refused:
        await refresh(world, tokens.refresh_token)
    assert "the subscription has ended" in (refused.value.error_description or "")
    (grant,) = await world.store.list_oauth_grants("owner@example.com", now=world.authority.now())
    assert grant.revoked_reason == "subscription_ended"


async def test_a_claim_code_signs_in_for_its_own_subscription_until_it_was_used(world: World) -> None:
    code = "c" * 43
    now = world.authority.now()
    async with world.store.transaction() as db:  # the welcome mail's claim, as its composer seals it
        claim_id = await reserve_email_claim(db, world.bearer.subscription_id, expires_at=now + 3600, now=now)
        reserved = await world.store.reserved_email_claim(db, claim_id)
        assert reserved is not None
        await world.store.seal_email_claim(db, reserved, claim_hash(code), expires_at=now + 3600, now=now)
    location = await world.provider.authorize(world.client, AuthorizationParams(
        state=None, scopes=None, code_challenge=CHALLENGE, redirect_uri=AnyUrl(REDIRECT),
        redirect_uri_provided_explicitly=True, resource=RESOURCE))
    request_id = location.split("request=")[1]
    await world.sign_in.use_secret(request_id, f"https://kamiyo.test/claim?code={code}", SESSION)  # the whole link
    view = await world.sign_in.consent(request_id, SESSION)
    assert view.entitlement is not None and view.entitlement.subscription_id == world.bearer.subscription_id
    assert view.email == "owner@example.com"

    async with world.store.transaction() as db:
        await db.execute("UPDATE claims SET redeemed_at = ? WHERE claim_id = ?", (now, claim_id))  # revealed
    later = (await world.provider.authorize(world.client, AuthorizationParams(
        state=None, scopes=None, code_challenge=CHALLENGE, redirect_uri=AnyUrl(REDIRECT),
        redirect_uri_provided_explicitly=True, resource=RESOURCE))).split("request=")[1]
    with pytest.raises(SignInError) as used:
        await world.sign_in.use_secret(later, code, SESSION)
    assert used.value.code == "invalid_claim_code"


async def test_a_code_or_refresh_token_gone_between_its_load_and_its_exchange_is_refused_cleanly(
        world: World) -> None:
    # The token endpoint loads, checks, then exchanges: a concurrent exchange may have dropped the row
    # in between. The answer is an invalid_grant (a 400), never an error escaping the transaction (a 500).
    loaded = await world.provider.load_authorization_code(world.client, await approved_code(world))
    assert loaded is not None
    with pytest.raises(TokenError) as code_gone:
        await world.provider.exchange_authorization_code(world.client, loaded.model_copy(
            update={"code_hash": secret_hash("kac_" + "0" * 43)}))
    assert (code_gone.value.error, code_gone.value.error_description) == (
        "invalid_grant", "authorization code does not exist")

    tokens = await world.provider.exchange_authorization_code(world.client, loaded)
    assert tokens.refresh_token is not None
    refresh_loaded = await world.provider.load_refresh_token(world.client, tokens.refresh_token)
    assert refresh_loaded is not None
    with pytest.raises(TokenError) as refresh_gone:
        await world.provider.exchange_refresh_token(world.client, refresh_loaded.model_copy(
            update={"token_hash": secret_hash("krt_" + "0" * 43)}), ["mcp"])
    assert (refresh_gone.value.error, refresh_gone.value.error_description) == (
        "invalid_grant", "refresh token does not exist")
    assert isinstance(await world.authority.authorize(tokens.access_token, "get_account_status"), Grant)


async def test_an_app_signed_in_with_an_operator_grant_never_outlives_the_grant(world: World) -> None:
    trial = await world.authority.issue_grant("trial@example.com", "team", days=1)
    tokens = await exchange(world, await approved_code(world, trial.token))
    assert tokens.refresh_token is not None
    # The grant's day: nothing the app is given lasts longer, and once it is over a refresh is refused.
    at = [trial.expires_at - 600]
    later = OAuthProvider(world.store, world.provider.codec, issuer=ISSUER, resource=RESOURCE, config=OAuthConfig(),
                          documents=MetadataDocuments(), sign_in_url=ISSUER + "/oauth/sign-in", clock=lambda: at[0])
    loaded = await later.load_refresh_token(world.client, tokens.refresh_token)
    assert isinstance(loaded, KamiyoRefreshToken)
    last = await later.exchange_refresh_token(world.client, loaded, loaded.scopes)
    assert last.expires_in == 600 and last.refresh_token is not None
    at[0] = trial.expires_at
    loaded = await later.load_refresh_token(world.client, last.refresh_token)
    assert isinstance(loaded, KamiyoRefreshToken) and loaded.expires_at == trial.expires_at  # capped, too
    with pytest.raises(TokenError) as over:
        await later.exchange_refresh_token(world.client, loaded, loaded.scopes)
    assert over.value.error == "invalid_grant"
    legacy = "krt_" + "L" * 43  # a refresh token given before grants capped them: it outlives the grant
    async with world.store.transaction() as db:
        await world.store.insert_oauth_refresh(db, StoredRefresh(secret_hash(legacy), loaded.grant_id, at[0] - 60,
                                                                 at[0] + 30 * 86_400, None))
    loaded = await later.load_refresh_token(world.client, legacy)
    assert isinstance(loaded, KamiyoRefreshToken)
    with pytest.raises(TokenError) as ended:
        await later.exchange_refresh_token(world.client, loaded, loaded.scopes)
    assert "the grant has ended" in (ended.value.error_description or "")

    # Revoking the grant's token ends the app's access on its next call, its refresh, and a new sign-in.
    again = await exchange(world, await approved_code(world, trial.token))
    assert isinstance(await world.authority.authorize(again.access_token, "get_account_status"), Grant)
    await world.authority.revoke(trial.token_id)
    denied = await world.authority.authorize(again.access_token, "get_account_status")
    assert isinstance(denied, Denial) and denied.code == "token_revoked"
    audit = [(row["action"], row["detail"]) for row in await world.store.audit_entries()]
    assert ("oauth.revoke", "the operator grant ended") in audit
    assert again.refresh_token is not None
    with pytest.raises(TokenError):
        await refresh(world, again.refresh_token)
    assert best_entitlement(await world.store.entitlements_for_email("trial@example.com"), world.provider.now()) is None

    # A grant with another live token (a rotation's successor, a second device) goes on.
    assert isinstance(await world.authority.authorize(world.bearer.token, "get_account_status"), Grant)
    kept = await exchange(world, await approved_code(world))
    successor = await world.authority.rotate(world.bearer.token_id)
    assert isinstance(await world.authority.authorize(kept.access_token, "get_account_status"), Grant)
    assert successor.expires_at == world.bearer.expires_at
