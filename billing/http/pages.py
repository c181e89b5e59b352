"""The customer's pages, plain HTML/CSS/JS from `static/` (no build step).

    GET /pricing                      the tiers (the table in force), an email field, checkout buttons
    GET /billing/success?session_id=  the checkout's tier and amount, "Reveal my token"
    GET /claim?code=                  the emailed link: "Reveal my token" (a GET never redeems)
    GET /static/style.css, /static/app.js

Without billing (no Stripe key) the pricing and success pages say subscriptions are not available
right now and disable what cannot work; the reason for the operator stays in the API's error and
the log. The emailed claim link needs no Stripe and keeps working.

Every page is `no-store`, sends no referrer (the query holds a claim secret) and runs under a
CSP that allows only this origin's script and style: no inline script anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from html import escape
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing.tiers import DEFAULT_TIERS, Tier, TierTable

Endpoint = Callable[[Request], Awaitable[Response]]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
       " form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# A mark for the tab (kept here: package data ships only .html/.css/.js); without it browsers ask for /favicon.ico.
FAVICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
               'fill="#3a4bd8"/><path d="M4 3h2v4l4-4h2.5l-4.5 4.6L12.8 13H10.3L6.9 9.1 6 10v3H4z" fill="#fff"/></svg>')
UNAVAILABLE = "Subscriptions are not available right now."
_BODY = re.compile(r'<body data-page="[a-z]+">')
_RISK = {"basic": "risk score and level", "summary": "risk score, exploit summary, recent incidents",
         "full": "full risk report: factors, recommendations, peer comparison"}


def page_routes(*, support_email: str, tiers: TierTable = DEFAULT_TIERS, overage_sold: bool = False,
                billing_enabled: bool = True) -> list[Route]:
    """The page and static-file routes; the pricing page shows `tiers` (and overage when it is sold)."""
    support = escape(support_email, quote=True)
    reveal = _static("reveal.html").replace("SUPPORT_EMAIL", support)
    cards = "\n".join(_tier_card(t, overage_sold=overage_sold, enabled=billing_enabled) for t in tiers)
    notice = "" if billing_enabled else (
        f'<p id="billing-notice" class="notice" role="status">{UNAVAILABLE} Questions to '
        f'<a href="mailto:{support}">{support}</a>. A token you already have keeps working.</p>')
    summary = "Looking up your checkout…" if billing_enabled else (
        f'{UNAVAILABLE} If you paid, the link in your welcome email reveals your token; questions to '
        f'<a href="mailto:{support}">{support}</a>.')
    off = "" if billing_enabled else " disabled"
    success_reveal = reveal.replace('id="reveal-button"', 'id="reveal-button"' + off)
    pages = {
        "/pricing": _static("pricing.html").replace("<!--TIERS-->", cards).replace("<!--NOTICE-->", notice)
                                           .replace('<input id="email"', '<input id="email"' + off),
        "/billing/success": _static("success.html").replace("<!--REVEAL-->", success_reveal)
                                                   .replace("<!--SUMMARY-->", summary),
        "/claim": _static("claim.html").replace("<!--REVEAL-->", reveal),
    }
    # What the page script needs to word its messages: the support address and whether billing is on.
    data = f' data-support="{support}" data-billing="{"on" if billing_enabled else "off"}"'
    pages = {path: _BODY.sub(lambda match: match[0][:-1] + data + ">", html, count=1) for path, html in pages.items()}
    assets = {
        "/static/style.css": (_static("style.css"), "text/css; charset=utf-8"),
        "/static/app.js": (_static("app.js"), "text/javascript; charset=utf-8"),
        "/static/favicon.svg": (FAVICON_SVG, "image/svg+xml"),
    }

    def page(html: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return Response(html, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
        return endpoint

    def asset(body: str, media_type: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=media_type, headers={
                "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
        return endpoint

    return [
        *(Route(path, page(html), methods=["GET", "HEAD"]) for path, html in pages.items()),
        *(Route(path, asset(body, media), methods=["GET", "HEAD"]) for path, (body, media) in assets.items()),
    ]


def tier_features(tier: Tier) -> list[str]:
    """What a tier gives, one line per feature (the pricing and consent pages)."""
    return [
        f"{tier.calls_per_minute} tool calls per minute, {tier.calls_per_day:,} per day",
        f"{tier.search_results_per_call} search results per call",
        _RISK.get(tier.risk_detail, tier.risk_detail),
        "wallet monitoring" if tier.monitor_wallet else "no wallet monitoring",
    ]


def _tier_card(tier: Tier, *, overage_sold: bool = False, enabled: bool = True) -> str:
    features = tier_features(tier)
    offers_overage = overage_sold and tier.overage
    if offers_overage:
        features.append(f"optional: past the daily quota, ${tier.overage_usd_per_1000_calls:,.2f} per 1,000 calls "
                        f"(capped at ${tier.overage_cap_usd:,} a month)")
    items = "".join(f"<li>{escape(f)}</li>" for f in features)
    name = escape(tier.name)
    option = (f'<label class="option"><input type="checkbox" data-overage="{name}"> Keep working past the daily '
              "quota (metered)</label>") if offers_overage else ""
    return (f'<article class="tier" aria-labelledby="tier-{name}"><h2 id="tier-{name}">{name}</h2>'
            f'<p class="price">${tier.price_usd_month}<span>/month</span></p><ul>{items}</ul>{option}'
            f'<button type="button" data-tier="{name}"{"" if enabled else " disabled"}>Subscribe to {name}</button>'
            '</article>')


def _static(name: str) -> str:
    return (resources.files("billing.http") / "static" / name).read_text(encoding="utf-8")
