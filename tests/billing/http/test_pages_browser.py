"""The pages in a real headless Chromium: pricing → Stripe Checkout, success → reveal once, emailed claim link.

Chromium is Playwright's own build when it is installed (`playwright install chromium`), else the
system's (Debian's `chromium`, which .ci/run installs); without either the tests skip with the
install command, and fail under CI=true. The fake Stripe stands behind the checkout call and its
hosted page is answered by the test.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import playwright.async_api as playwright_api
import pytest

from tests.billing.http.delivery_harness import Inbox, Shop, claim_link, running_shop
from tests.components import missing
from tests.fakes.stripe_fake import FakeStripe
from tests.support import REPO

SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARTIFACTS = REPO / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def install_command() -> str:
    return (f"{Path(sys.executable).parent / 'playwright'} install --with-deps chromium "
            "(Playwright's build) or apt-get install chromium")


def chromium_executable(playwright_own: str) -> str | None:
    """Playwright's own Chromium when installed, else the system's; None when there is neither."""
    if playwright_own and Path(playwright_own).exists():
        return playwright_own
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
async def shop(tmp_path: Path, fake: FakeStripe, inbox: Inbox) -> AsyncIterator[Shop]:
    async with running_shop(tmp_path, fake, smtp_port=inbox.port) as running:
        yield running


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as pw:
        executable = chromium_executable(pw.chromium.executable_path)
        if executable is None:
            missing("Chromium", install_command())
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=executable, headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 1400})
        try:
            yield context
        finally:
            await context.close()


async def open_page(browser: object) -> tuple[object, list[str]]:
    page = await browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


async def test_pricing_checkout_success_and_a_token_revealed_once(browser: object, shop: Shop, inbox: Inbox) -> None:
    page, problems = await open_page(browser)
    stripe_pages: list[str] = []

    async def hosted_checkout(route: object) -> None:
        stripe_pages.append(route.request.url)  # type: ignore[attr-defined]
        await route.fulfill(status=200, content_type="text/html",  # type: ignore[attr-defined]
                            body="<!doctype html><title>Stripe Checkout</title><h1>Stripe Checkout</h1>")

    await page.route("https://checkout.stripe.com/**", hosted_checkout)  # type: ignore[attr-defined]
    await page.goto(f"{shop.url}/pricing")  # type: ignore[attr-defined]
    cards = page.locator("article.tier")  # type: ignore[attr-defined]
    assert await cards.count() == 3
    assert "$99" in await cards.nth(1).inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "pricing.png"), full_page=True)  # type: ignore[attr-defined]

    await page.get_by_role("button", name="Subscribe to team").click()  # type: ignore[attr-defined]
    assert "valid email" in await page.locator("#status").inner_text()  # type: ignore[attr-defined]
    await page.get_by_label("Email for the receipt").fill("browser@example.com")  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Subscribe to team").click()  # type: ignore[attr-defined]
    await page.wait_for_url("https://checkout.stripe.com/**", timeout=15_000)  # type: ignore[attr-defined]

    (checkout_call,) = shop.fake.requests_to("POST", "/v1/checkout/sessions")
    assert checkout_call.params["customer_email"] == "browser@example.com"
    assert checkout_call.params["metadata"]["tier"] == "team"
    session_id = stripe_pages[0].rsplit("/", 1)[-1]
    success_url = checkout_call.params["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    assert success_url == f"{shop.url}/billing/success?session_id={session_id}"

    await shop.complete(session_id)  # the customer pays; Stripe's webhook arrives
    await page.goto(success_url)  # type: ignore[attr-defined]
    summary = page.locator("#summary-text")  # type: ignore[attr-defined]
    await summary.filter(has_text="Team plan").wait_for(timeout=15_000)
    amount = shop.fake.state.checkout_sessions[session_id]["amount_total"]
    shown = await summary.inner_text()
    assert f"${amount / 100:,.2f} per month" in shown and "browser@example.com" in shown

    await page.get_by_role("button", name="Reveal my token").click()  # type: ignore[attr-defined]
    await page.locator("#revealed").wait_for(state="visible", timeout=15_000)  # type: ignore[attr-defined]
    token = await page.locator("#token").input_value()  # type: ignore[attr-defined]
    config = json.loads(await page.locator("#config").input_value())  # type: ignore[attr-defined]
    assert config["mcpServers"]["kamiyo"]["env"]["AUTH_HEADER"] == f"Bearer {token}"
    assert session_id not in page.url and token not in page.url  # type: ignore[attr-defined]
    assert await page.context.cookies() == []  # type: ignore[attr-defined]
    await page.screenshot(path=str(ARTIFACTS / "billing-success-token-revealed.png"), full_page=True)  # type: ignore[attr-defined]

    validated = await shop.client.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
    assert validated.status_code == 200 and validated.json()["tier"] == "team"

    second, second_problems = await open_page(browser)
    await second.goto(success_url)  # type: ignore[attr-defined]
    await second.get_by_role("button", name="Reveal my token").click()  # type: ignore[attr-defined]
    status = second.locator("#reveal-status")  # type: ignore[attr-defined]
    await status.filter(has_text="already revealed").wait_for(timeout=15_000)
    assert "rotate" in await status.inner_text()
    assert await second.locator("#revealed").is_hidden()  # type: ignore[attr-defined]
    assert problems == [] and [p for p in second_problems if "410" not in p] == []


async def test_the_emailed_link_page_redeems_only_on_the_click(browser: object, shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("mailed@example.com", "personal")
    link = claim_link(await inbox.next())
    code = parse_qs(urlsplit(link).query)["code"][0]

    page, problems = await open_page(browser)
    await page.goto(link)  # type: ignore[attr-defined]  # what a mail scanner does: open it
    await page.get_by_role("button", name="Reveal my token").wait_for()  # type: ignore[attr-defined]
    unredeemed = await shop.claim(claim_code="x" * 43)  # unrelated probe: the page's GET redeemed nothing
    assert unredeemed.status_code == 404
    assert await shop.runtime.store.list_tokens() == []

    await page.get_by_role("button", name="Reveal my token").click()  # type: ignore[attr-defined]
    await page.locator("#revealed").wait_for(state="visible", timeout=15_000)  # type: ignore[attr-defined]
    assert (await page.locator("#token-tier").inner_text()) == "personal"  # type: ignore[attr-defined]
    assert code not in page.url  # type: ignore[attr-defined]
    (row,) = await shop.runtime.store.list_tokens()
    assert row.subscription_id == paid.subscription_id
    assert problems == []


async def test_with_billing_off_the_pages_say_not_available_and_offer_nothing_that_cannot_work(
        tmp_path: Path, fake: FakeStripe, browser: object) -> None:
    async with running_shop(tmp_path, fake, smtp_port=None, STRIPE_SECRET_KEY="") as shop:
        page, problems = await open_page(browser)
        await page.goto(f"{shop.url}/pricing")  # type: ignore[attr-defined]
        notice = page.locator("#billing-notice")  # type: ignore[attr-defined]
        assert "not available right now" in await notice.inner_text()
        buttons = page.locator("button[data-tier]")  # type: ignore[attr-defined]
        assert await buttons.count() == 3
        for index in range(3):
            assert await buttons.nth(index).is_disabled()
        assert await page.get_by_label("Email for the receipt").is_disabled()  # type: ignore[attr-defined]
        await buttons.nth(0).click(force=True)  # a disabled button: nothing happens, nothing is asked
        pricing_text = await page.locator("body").inner_text()  # type: ignore[attr-defined]
        await page.screenshot(path=str(ARTIFACTS / "pricing-billing-off.png"), full_page=True)  # type: ignore[attr-defined]

        success, success_problems = await open_page(browser)
        await success.goto(f"{shop.url}/billing/success?session_id=cs_test_a1B2c3")  # type: ignore[attr-defined]
        summary = success.locator("#summary-text")  # type: ignore[attr-defined]
        await summary.filter(has_text="not available right now").wait_for(timeout=15_000)
        assert await success.get_by_role("button", name="Reveal my token").is_disabled()  # type: ignore[attr-defined]
        success_text = await success.locator("body").inner_text()  # type: ignore[attr-defined]

    for text in (pricing_text, success_text):
        assert "STRIPE_SECRET_KEY" not in text and "not configured" not in text and "help@kamiyo.test" in text
    assert fake.requests == [] and shop.fake.requests == []
    assert problems == [] and success_problems == []


async def test_when_stripe_fails_a_buyer_reads_not_available_not_the_operators_error(
        shop: Shop, browser: object) -> None:
    shop.fake.fail_next(500, times=5, should_retry=False)
    page, _ = await open_page(browser)
    await page.goto(f"{shop.url}/pricing")  # type: ignore[attr-defined]
    await page.get_by_label("Email for the receipt").fill("buyer@example.com")  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Subscribe to team").click()  # type: ignore[attr-defined]

    status = page.locator("#status")  # type: ignore[attr-defined]
    await status.filter(has_text="not available right now").wait_for(timeout=15_000)
    shown = await status.inner_text()
    assert "Stripe refused" not in shown and "api_error" not in shown and "help@kamiyo.test" in shown
    assert not await page.get_by_role("button", name="Subscribe to team").is_disabled()  # type: ignore[attr-defined]
