"""The sign-in pages in a real headless Chromium: sign in by mail, consent, no subscription → plans.

The same browser setup as the other page tests (Debian's chromium through Playwright); the real
app on a loopback port, a real SMTP inbox, the fake Stripe behind checkout. Screenshots go to
test-artifacts/. The pages carry no script: everything here is links and form buttons.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.billing.http import test_pages_browser as pages_browser
from tests.billing.http.delivery_harness import Inbox, Shop, running_shop
from tests.fakes.stripe_fake import FakeStripe
from tests.support_oauth import next_sign_in_mail, sign_in_link

# The browser and page helper of the other page tests (same Chromium, same skip rules); `inbox` is shared.
browser, open_page, ARTIFACTS = pages_browser.browser, pages_browser.open_page, pages_browser.ARTIFACTS
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT = "http://127.0.0.1:47001/callback"


@pytest.fixture
async def shop(tmp_path: Path, fake: FakeStripe, inbox: Inbox) -> AsyncIterator[Shop]:
    async with running_shop(tmp_path, fake, smtp_port=inbox.port) as running:
        yield running


async def start(shop: Shop, name: str) -> str:
    """A registered client's authorization URL."""
    registered = await shop.client.post("/register", json={
        "client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert registered.status_code == 201, registered.text
    query = httpx.QueryParams({"response_type": "code", "client_id": registered.json()["client_id"],
                               "redirect_uri": REDIRECT, "state": "s1", "code_challenge": CHALLENGE,
                               "code_challenge_method": "S256", "resource": shop.url + "/mcp"})
    return f"{shop.url}/authorize?{query}"


async def sign_in_by_mail(page: Any, shop: Shop, inbox: Inbox, email: str, shot: str | None = None) -> None:
    await page.get_by_label("Email you subscribed with").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.get_by_role("heading", name="Check your email").wait_for(timeout=15_000)
    if shot:
        await page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    await page.goto(sign_in_link(await next_sign_in_mail(inbox)))
    await page.get_by_role("button", name="Continue").click()


async def test_a_customer_signs_in_by_mail_and_allows_the_app(shop: Shop, inbox: Inbox,
                                                               browser: object) -> None:
    await shop.pay("browser-oauth@example.com", "team")
    page, problems = await open_page(browser)
    returned: list[str] = []

    async def the_app(route: Any) -> None:
        returned.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>App</title>Connected")

    await page.route(REDIRECT + "**", the_app)  # type: ignore[attr-defined]
    await page.goto(await start(shop, "Claude"))  # type: ignore[attr-defined]
    await page.get_by_text("Claude wants to use your KAMIYO MCP subscription").wait_for()  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "oauth-sign-in.png"), full_page=True)  # type: ignore[attr-defined]
    await sign_in_by_mail(page, shop, inbox, "browser-oauth@example.com", "oauth-check-email.png")

    await page.get_by_role("heading", name="Allow Claude?").wait_for(timeout=15_000)  # type: ignore[attr-defined]
    text = await page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "team plan" in text and "120 tool calls per minute" in text and "127.0.0.1 (this computer)" in text
    await page.screenshot(path=str(ARTIFACTS / "oauth-consent.png"), full_page=True)  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Allow").click()  # type: ignore[attr-defined]
    await page.wait_for_url(REDIRECT + "**", timeout=15_000)  # type: ignore[attr-defined]
    (back,) = returned
    query = httpx.URL(back).params
    assert query["state"] == "s1" and query["code"].startswith("kac_") and query["iss"] == shop.url
    assert problems == []


async def test_without_a_subscription_the_plans_open_stripe_checkout(shop: Shop, inbox: Inbox,
                                                                     browser: object) -> None:
    page, problems = await open_page(browser)
    checkout: list[str] = []

    async def hosted_checkout(route: Any) -> None:
        checkout.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html",
                            body="<!doctype html><title>Stripe Checkout</title><h1>Stripe Checkout</h1>")

    await page.route("https://checkout.stripe.com/**", hosted_checkout)  # type: ignore[attr-defined]
    await page.goto(await start(shop, "Cursor"))  # type: ignore[attr-defined]
    await sign_in_by_mail(page, shop, inbox, "no-plan-yet@example.com")
    await page.get_by_role("heading", name="Choose a plan").wait_for(timeout=15_000)  # type: ignore[attr-defined]
    assert await page.locator("article.tier").count() == 3  # type: ignore[attr-defined]
    assert await page.get_by_role("button", name="Not available right now").is_disabled()  # type: ignore[attr-defined]
    await page.screenshot(path=str(ARTIFACTS / "oauth-plans.png"), full_page=True)  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Subscribe to personal").click()  # type: ignore[attr-defined]
    await page.wait_for_url("https://checkout.stripe.com/**", timeout=15_000)  # type: ignore[attr-defined]
    (call,) = shop.fake.requests_to("POST", "/v1/checkout/sessions")
    assert call.params["customer_email"] == "no-plan-yet@example.com"
    assert call.params["cancel_url"].startswith(shop.url + "/oauth/consent?request=kar_")
    assert len(checkout) == 1 and problems == []
