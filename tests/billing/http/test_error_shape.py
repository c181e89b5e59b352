"""Every error of the billing endpoints has the one JSON error shape (one test, every error)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.billing.http.app_harness import assert_error_shape, checkout_body, environment, running_app
from tests.fakes.stripe_fake import FakeStripe

CHECKOUT = "/api/billing/create-checkout-session"
PORTAL = "/api/billing/create-portal-session"


async def test_every_billing_error_has_the_one_json_error_shape(tmp_path: Path, fake: FakeStripe) -> None:
    answers: list[tuple[httpx.Response, int]] = []
    env = environment(tmp_path, fake, KAMIYO_CHECKOUT_RATE_PER_MINUTE="20")
    async with running_app(env, fake) as billing:
        grant = (await billing.runtime.authority.issue_grant("friend@example.com", "team")).token
        post, get = billing.client.post, billing.client.get
        answers += [
            (await post(CHECKOUT, json=checkout_body(tier="gold")), 400),
            (await post(CHECKOUT, json=checkout_body(tier="enterprise")), 400),
            (await post(CHECKOUT, json=checkout_body(user_email="x")), 400),
            (await post(CHECKOUT, json=checkout_body(success_url="https://evil.example/")), 400),
            (await post(CHECKOUT, content=b"{", headers={"Content-Type": "application/json"}), 400),
            (await post(CHECKOUT, content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"}), 413),
            (await post(CHECKOUT, content=b"a=b", headers={"Content-Type": "text/plain"}), 415),
            (await get(CHECKOUT), 405),
            (await get("/api/billing/checkout-session/bogus"), 400),
            (await get("/api/billing/checkout-session/cs_test_unknown"), 404),
            (await post("/api/billing/checkout-session/cs_test_unknown"), 405),
            (await post(PORTAL, json={}), 401),
            (await post(PORTAL, json={}, headers={"Authorization": "Bearer junk"}), 401),
            (await post(PORTAL, json={}, headers={"Authorization": f"Bearer {grant}"}), 409),
            (await billing.client.delete("/api/billing/checkout-health"), 405),
            (await billing.client.request("QUERY", PORTAL), 405),
        ]
        await post(CHECKOUT, json=checkout_body(), headers={"Idempotency-Key": "k-1"})
        answers.append((await post(CHECKOUT, json=checkout_body(tier="team"), headers={"Idempotency-Key": "k-1"}), 409))
        fake.fail_next(402)
        answers.append((await post(CHECKOUT, json=checkout_body()), 502))
        limited = [await post(CHECKOUT, json=checkout_body(tier="gold")) for _ in range(20)]
        answers.append((limited[-1], 429))
    del env["STRIPE_SECRET_KEY"]
    async with running_app(env, fake) as unconfigured:
        answers.append((await unconfigured.checkout(), 503))
        answers.append((await unconfigured.client.get("/api/billing/checkout-health"), 503))

    for response, status in answers:
        assert_error_shape(response, status)
    assert {status for _, status in answers} == {400, 401, 404, 405, 409, 413, 415, 429, 502, 503}
