"""The pages' HTTP contract: content from the tier table, strict headers, no inline script."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette

from billing.http.pages import page_routes
from billing.tiers import TIERS


def client(*, billing_enabled: bool = True) -> httpx.AsyncClient:
    app = Starlette(routes=page_routes(support_email="help@kamiyo.test", billing_enabled=billing_enabled))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://kamiyo.test")


async def test_every_page_is_no_store_no_referrer_and_under_a_strict_csp() -> None:
    async with client() as http:
        for path in ("/pricing", "/billing/success?session_id=cs_test_1", "/claim?code=abc"):
            answer = await http.get(path)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["x-content-type-options"] == "nosniff"
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
            assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), "inline script"
            assert not re.search(r"<[^>]+\son[a-z]+=", answer.text), "inline event handler"


async def test_the_pricing_page_lists_every_tier_with_its_price_and_limits() -> None:
    async with client() as http:
        html = (await http.get("/pricing")).text
    for tier in TIERS.values():
        assert f'data-tier="{tier.name}"' in html
        assert f"${tier.price_usd_month}<span>/month" in html
        assert f"{tier.calls_per_day:,} per day" in html
        assert f"{tier.search_results_per_call} search results per call" in html


async def test_the_reveal_pages_name_the_support_address_and_the_assets_are_served() -> None:
    async with client() as http:
        assert "mailto:help@kamiyo.test" in (await http.get("/claim")).text
        script = await http.get("/static/app.js")
        style = await http.get("/static/style.css")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert "localStorage" not in script.text and "document.cookie" not in script.text


async def test_without_billing_the_buyer_pages_say_not_available_and_disable_what_cannot_work() -> None:
    async with client(billing_enabled=False) as http:
        pricing = (await http.get("/pricing")).text
        success = (await http.get("/billing/success?session_id=cs_test_1")).text
        claim = (await http.get("/claim?code=abc")).text
    assert "not available right now" in pricing and "not available right now" in success
    assert pricing.count(" disabled>Subscribe to ") == len(TIERS) and '<input id="email" disabled' in pricing
    assert re.search(r'id="reveal-button" disabled', success)
    assert 'data-billing="off"' in pricing and 'data-support="help@kamiyo.test"' in success
    assert not re.search(r'id="reveal-button" disabled', claim)  # the emailed link needs no Stripe
    for html in (pricing, success, claim):
        assert "STRIPE" not in html and "not configured" not in html
    async with client() as http:
        assert " disabled" not in (await http.get("/pricing")).text
