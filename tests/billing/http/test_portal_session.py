"""POST /api/billing/create-portal-session with a token issued by the core."""

from __future__ import annotations

import base64

import pytest

from tests.billing.http.app_harness import (
    PUBLIC_URL,
    SEEDED_CUSTOMER,
    SEEDED_SUBSCRIPTION,
    Billing,
    assert_error_shape,
    running_app,
)
from tests.fakes.stripe_fake import FakeStripe
from tests.support import mint_token

PORTAL = "/v1/billing_portal/sessions"


async def subscriber_token(billing: Billing) -> str:
    """A token for the customer a real, signed checkout.session.completed webhook recorded."""
    assert (await billing.post_event("checkout.session.completed")).status_code == 200
    user_id = await billing.runtime.store.find_user_id("example@example.com")
    assert user_id is not None
    return await mint_token(billing.runtime, user_id, SEEDED_SUBSCRIPTION)


async def test_a_subscribers_token_opens_the_portal_of_their_stripe_customer(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        token = await subscriber_token(billing)
        response = await billing.portal(token, {"return_url": "https://app.kamiyo.test/account"})

    assert response.status_code == 200, response.text
    (sent,) = billing.stripe_calls("POST", PORTAL)
    assert sent.params == {"customer": SEEDED_CUSTOMER, "return_url": "https://app.kamiyo.test/account"}
    assert response.json() == {"portal_url": response.json()["portal_url"]}
    assert response.json()["portal_url"].startswith("https://billing.stripe.com/p/session/")


async def test_without_a_return_url_the_portal_returns_to_the_public_url(env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        token = await subscriber_token(billing)
        headers = {"Authorization": f"Bearer {token}"}
        empty = await billing.client.post("/api/billing/create-portal-session", headers=headers)

    assert empty.status_code == 200, empty.text
    (sent,) = billing.stripe_calls("POST", PORTAL)
    assert sent.params["return_url"] == f"{PUBLIC_URL}/"


async def test_a_return_url_outside_the_allowed_origins_is_refused(env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        token = await subscriber_token(billing)
        response = await billing.portal(token, {"return_url": "https://evil.example/"})

    assert_error_shape(response, 400, "redirect_not_allowed")
    assert billing.stripe_calls("POST", PORTAL) == []



def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "Authorization: Bearer"),
        ("Basic dXNlcjpwYXNz", "Authorization: Bearer"),
        ("Bearer not.a.jwt", "not valid"),
        ("Bearer " + ".".join(b64url(part) for part in (b'{"alg":"HS256"}', b"{}", b"signature")), "not valid"),
    ],
)
async def test_no_or_an_invalid_token_answers_401_with_a_challenge(
    env: dict[str, str], fake: FakeStripe, authorization: str | None, reason: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with running_app(env, fake) as billing:
        response = await billing.client.post("/api/billing/create-portal-session", json={}, headers=headers)

    body = assert_error_shape(response, 401, "invalid_token")
    assert reason in body["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert fake.requests == []


async def test_a_revoked_token_answers_401(env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        token = await subscriber_token(billing)
        (row,) = await billing.runtime.authority.list_tokens("example@example.com")
        await billing.runtime.authority.revoke(row.token_id)
        response = await billing.portal(token)

    assert_error_shape(response, 401, "invalid_token")
    assert billing.stripe_calls("POST", PORTAL) == []


async def test_an_operator_grant_without_a_stripe_customer_answers_409(env: dict[str, str], fake: FakeStripe) -> None:
    async with running_app(env, fake) as billing:
        grant = await billing.runtime.authority.issue_grant("friend@example.com", "team")
        response = await billing.portal(grant.token)

    body = assert_error_shape(response, 409, "no_stripe_customer")
    assert "operator grant" in body["error"]["message"]
    assert fake.requests == []
