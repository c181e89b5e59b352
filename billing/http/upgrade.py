"""The upgrade link's pages: GET shows, POST acts, and the "done — retry your request" page.

    GET  /billing/upgrade?code=…    what the link changes, and a "Continue to Stripe" button
    POST /billing/upgrade           (form: code[, cap_usd]) uses the link once → 303 to Stripe's portal flow or Checkout
                                    (or, for a plan the portal cannot change, changes it → 303 to the done page)
    GET  /billing/upgraded?tier=…   where Stripe returns: done, retry the request in Claude (&overage=on:
                                    the link turned metered overage on)

No sign-in: the link's code is the proof. Pages are `no-store`, send no referrer (the query holds
the code) and run under the pages' CSP, whose form-action also allows Stripe's hosted pages (a
browser applies form-action to the redirect that follows the POST).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from importlib import resources
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing.errors import StoreError
from billing.http.ip_rate_limit import PerIPLimiter
from billing.http.pages import CSP, SECURITY_HEADERS
from billing.overage import effective_cap_cents
from billing.store.upgrade_sql import OVERAGE_REASON, UpgradeLink
from billing.stripe_gateway import StripeGateway, StripeGatewayError
from billing.tiers import TierTable
from billing.upgrade import DONE_PATH, UPGRADE_PATH, LinkRefused, UpgradeLinks

MAX_FORM_BYTES = 4096
FOLLOW_RATE_PER_MINUTE = 20
STRIPE_PAGES = "https://billing.stripe.com https://checkout.stripe.com"
_HEADERS = {**SECURITY_HEADERS,
            "Content-Security-Policy": CSP.replace("form-action 'self'", f"form-action 'self' {STRIPE_PAGES}")}


def upgrade_routes(links: Callable[[], UpgradeLinks], gateway: Callable[[], StripeGateway | None], tiers: TierTable,
                   *, clock: Callable[[], float] = time.time) -> list[Route]:
    """The upgrade pages; `links` and `gateway` give what the lifespan opened."""
    limiter = PerIPLimiter(FOLLOW_RATE_PER_MINUTE, clock=clock)
    template = (resources.files("billing.http") / "static" / "upgrade.html").read_text(encoding="utf-8")

    def _page(title: str, body: str, *, status: int = 200, extra: dict[str, str] | None = None) -> Response:
        html = template.replace("<!--TITLE-->", escape(title)).replace("<!--BODY-->", body)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                        headers={**_HEADERS, **(extra or {})})

    def _refusal(refused: LinkRefused) -> Response:
        titles = {"already_upgraded": "Already upgraded", "already_on": "Already on", "invalid_cap": "Check the cap"}
        title = titles.get(refused.code, "This link cannot be used")
        return _page(title, f"<p>{escape(refused.message)}</p>", status=refused.status)

    def _unavailable() -> Response:
        return _page("Try again shortly", "<p>The account service is unavailable right now. Try the link again in a "
                     "few seconds.</p>", status=503, extra={"Retry-After": "5"})

    async def show(request: Request) -> Response:
        code = request.query_params.get("code", "")
        try:
            link = await links().show(code)
        except LinkRefused as refused:
            return _refusal(refused)
        except StoreError:
            return _unavailable()
        if link.reason == OVERAGE_REASON:
            return _page("Keep working past the daily quota", _overage_body(link, code))
        target, current = tiers.get(link.target_tier), tiers.get(link.tier)
        price = f"${target.price_usd_month}/month" if target else ""
        rows = [("Account", link.email), ("Current plan", link.tier), ("New plan", f"{link.target_tier} ({price})")]
        if target and current:
            rows.append(("Calls per day", f"{current.calls_per_day:,} → {target.calls_per_day:,}"))
        details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
        button = "Continue to Stripe"
        if link.kind == "stripe" and link.overage_item_id is not None:
            button = "Upgrade now"
            how = ("Your plan also carries metered overage, so the change is made here: pressing the button "
                   "invoices the prorated difference for the rest of this billing period to your payment method "
                   "on file, and the new plan applies once that is paid. Metered overage stays on.")
        elif link.kind == "stripe":
            how = ("Stripe shows the prorated amount and asks you to confirm the change. Nothing changes until you "
                   "confirm.")
        else:
            how = ("Your access today is a grant from the operator, so this opens Stripe Checkout for a new "
                   f"{escape(link.target_tier)} subscription. After paying, the next page gives you its token.")
        body = _link_form("Plan change", details, how, code, button, link.expires_at)
        return _page(f"Upgrade to {link.target_tier}", body)

    def _overage_body(link: UpgradeLink, code: str) -> str:
        tier = tiers[link.tier]
        cap = effective_cap_cents(tier, link.overage_cap_cents) / 100
        rows = [("Account", link.email), ("Plan", f"{link.tier} ({tier.calls_per_day:,} calls a day)"),
                ("Past the daily quota", f"${tier.overage_usd_per_1000_calls:,.2f} per 1,000 calls"),
                ("Spend cap", f"${cap:,.2f} per billing period")]
        details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
        how = ("Calls past the daily quota keep working and are billed with your plan's invoice, never beyond the "
               "spend cap; the per-minute limit stays. Nothing is charged until you make such calls.")
        field = (f'<label>Lower the spend cap (whole dollars, 0 to {tier.overage_cap_usd:,}; empty keeps '
                 f'${cap:,.2f}) <input type="number" name="cap_usd" min="0" max="{tier.overage_cap_usd}" step="1" '
                 'inputmode="numeric"></label>')
        return _link_form("Metered overage", details, how, code, "Turn on overage", link.expires_at, field)

    async def follow(request: Request) -> Response:
        retry_after = limiter.hit_request(request)
        if retry_after is not None:
            return _page("Too many attempts", f"<p>Too many attempts from this address. Try again in {retry_after} s."
                         "</p>", status=429, extra={"Retry-After": str(retry_after)})
        form = await _form(request)
        opened = gateway()
        if opened is None:
            return _page("Upgrade unavailable", "<p>Billing is not available on this server right now. Try again "
                         "shortly.</p>", status=503, extra={"Retry-After": "5"})
        try:
            url = await links().follow(form.get("code", ""), opened, cap_field=form.get("cap_usd", ""))
        except LinkRefused as refused:
            return _refusal(refused)
        except StripeGatewayError as exc:
            return _page("Stripe did not answer", f"<p>Stripe could not make the change ({escape(exc.message)}). "
                         "Your link still works: go back and press the button again.</p>", status=502)
        except StoreError:
            return _unavailable()
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store",
                                                                "Referrer-Policy": "no-referrer"})

    async def done(request: Request) -> Response:
        tier = request.query_params.get("tier", "")
        if request.query_params.get("overage") == "on":
            return _page("Done — retry your request", "<p class=\"lead\">Metered overage is being turned on. Go back "
                         "to Claude and retry your request: it runs as soon as Stripe tells us, usually within "
                         "seconds.</p><p class=\"small\">You can close this tab.</p>")
        plan = f"the {escape(tier)} tier" if tiers.get(tier) is not None else "your new plan"
        body = (f"<p class=\"lead\">Your plan change is confirmed. Go back to Claude and retry your request: it "
                f"runs on {plan} as soon as Stripe tells us, usually within seconds.</p>"
                "<p class=\"small\">You can close this tab.</p>")
        return _page("Done — retry your request", body)

    return [
        Route(UPGRADE_PATH, show, methods=["GET", "HEAD"], name="upgrade_show"),
        Route(UPGRADE_PATH, follow, methods=["POST"], name="upgrade_follow"),
        Route(DONE_PATH, done, methods=["GET", "HEAD"]),
    ]


def _link_form(label: str, details: str, how: str, code: str, button: str, expires_at: int, field: str = "") -> str:
    """The link page's body: what changes, how, and the one button that uses the link."""
    expiry = datetime.fromtimestamp(expires_at, UTC).strftime("%H:%M UTC")
    return (f'<section class="plan-change" aria-label="{label}"><dl>{details}</dl><p>{how}</p>'
            f'<form class="inline" method="post" action="{UPGRADE_PATH}">'
            f'<input type="hidden" name="code" value="{escape(code, quote=True)}">{field}'
            f'<button type="submit" class="primary">{button}</button></form></section>'
            f'<p class="small">This link works once, until {expiry}. It never shows or needs your token.</p>')


async def _form(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form, first value each (empty when the form is unusable)."""
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                return {}
            chunks.append(chunk)
    except ClientDisconnect:
        return {}
    try:
        form = parse_qs(b"".join(chunks).decode("ascii"), max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in form.items() if values}
