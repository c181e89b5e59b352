"""The sign-in pages' HTML: plain forms (no script at all), the site's stylesheet, a strict CSP.

Every value shown is escaped here; the caller passes raw strings. A page's CSP lets its forms
post only to this site, plus the one place the browser is sent next (the app's redirect URI after
consent, Stripe Checkout from the plans), because browsers apply `form-action` to those redirects.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from billing.http.pages import tier_features
from billing.tiers import Tier

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def origin_source(url: str) -> str | None:
    """The CSP source for where `url` leads: `scheme://host[:port]`, or `scheme:` for an app's own scheme."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
    return f"{parts.scheme}:" if parts.scheme.isascii() and parts.scheme.replace(".", "").replace("-", "").replace(
        "+", "").isalnum() else None


def page(title: str, body: str, *, status: int = 200, form_targets: Iterable[str] = (), images: Iterable[str] = (),
         refresh_seconds: int | None = None) -> HTMLResponse:
    form_action = " ".join(["'self'", *form_targets])
    img = " ".join(["'self'", *images])
    csp = (f"default-src 'none'; style-src 'self'; img-src {img}; form-action {form_action}; base-uri 'none';"
           " frame-ancestors 'none'")
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">' if refresh_seconds else ""
    html = ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)} | KAMIYO MCP</title>\n{refresh}"
            "<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">\n"
            "<link rel=\"stylesheet\" href=\"/static/style.css\">\n</head>\n"
            f"<body data-page=\"oauth\">\n<main class=\"narrow\">\n{body}\n</main>\n</body>\n</html>\n")
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"})


def hidden(**fields: str) -> str:
    return "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v, quote=True)}">'
                   for k, v in fields.items())


def notice(message: str | None) -> str:
    return f'<p class="status error" role="alert">{escape(message)}</p>' if message else ""


def app_line(client_name: str, host: str) -> str:
    return (f"<p class=\"lead\"><strong>{escape(client_name)}</strong> wants to use your KAMIYO MCP subscription. "
            f"After you approve, your browser returns to <strong>{escape(host)}</strong>.</p>")


def sign_in_body(*, request_id: str, client_name: str, host: str, csrf_email: str, csrf_secret: str,
                 error: str | None = None, email: str = "") -> str:
    return f"""<h1>Sign in to KAMIYO MCP</h1>
{app_line(client_name, host)}
{notice(error)}
<form method="post" action="/oauth/sign-in" class="card">
  {hidden(request=request_id, csrf=csrf_email)}
  <label for="email">Email you subscribed with</label>
  <input id="email" name="email" type="email" autocomplete="email" required value="{escape(email, quote=True)}"
         placeholder="you@example.com">
  <p class="small">We email you a sign-in link. No subscription yet? Sign in anyway: you can choose a plan next.</p>
  <button class="primary" type="submit">Email me a sign-in link</button>
</form>
<details class="card">
  <summary>Sign in with a KAMIYO token or claim link instead</summary>
  <form method="post" action="/oauth/sign-in/secret">
    {hidden(request=request_id, csrf=csrf_secret)}
    <label for="secret">Your KAMIYO token, or the claim link from your welcome email</label>
    <input id="secret" name="secret" type="password" autocomplete="off" required spellcheck="false">
    <button type="submit">Sign in with it</button>
  </form>
</details>"""


def check_email_body(*, email: str, client_name: str, request_id: str, csrf: str, minutes: int) -> str:
    return f"""<h1>Check your email</h1>
<p class="lead">A sign-in link for <strong>{escape(email)}</strong> is on its way. Open it on this computer within
{minutes} minutes to connect <strong>{escape(client_name)}</strong>.</p>
<p class="small">Nothing arrived after a few minutes? Check the spam folder, then send another link.</p>
<form method="post" action="/oauth/sign-in" class="inline">
  {hidden(request=request_id, csrf=csrf, email=email)}
  <button type="submit">Send another link</button>
</form>
<p class="small"><a href="/oauth/sign-in?request={escape(request_id, quote=True)}">Use another email</a></p>"""


def link_body(*, code: str, email: str, client_name: str, host: str, csrf: str) -> str:
    return f"""<h1>Continue signing in</h1>
<p class="lead">Sign in as <strong>{escape(email)}</strong> to connect <strong>{escape(client_name)}</strong>
(it returns to <strong>{escape(host)}</strong>).</p>
<form method="post" action="/oauth/link" class="card">
  {hidden(code=code, csrf=csrf)}
  <button class="primary" type="submit">Continue</button>
</form>
<p class="small">This link works once. If you did not ask to connect this app, close this page.</p>"""


def consent_body(*, request_id: str, client_name: str, host: str, email: str, tier: Tier, csrf: str,
                 logo: str | None) -> str:
    items = "".join(f"<li>{escape(f)}</li>" for f in tier_features(tier))
    image = (f'<img class="logo" src="{escape(logo, quote=True)}" alt="" width="48" height="48" '
             'referrerpolicy="no-referrer">') if logo else ""
    return f"""<h1>{image}Allow {escape(client_name)}?</h1>
<p class="lead"><strong>{escape(client_name)}</strong> will call KAMIYO MCP tools as
<strong>{escape(email)}</strong>, on your <strong>{escape(tier.name)}</strong> plan. Its calls count toward the
plan's quota, shared with your other KAMIYO tokens.</p>
<section class="card">
  <h2>Your {escape(tier.name)} plan</h2>
  <ul>{items}</ul>
</section>
<p>After you allow it, your browser returns to <strong>{escape(host)}</strong>. The app keeps access while your
subscription is active, until you or the app revoke it.</p>
<form method="post" action="/oauth/consent" class="actions">
  {hidden(request=request_id, csrf=csrf)}
  <button class="primary" type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="small">Not {escape(email)}? <a href="/oauth/sign-in?request={escape(request_id, quote=True)}">Sign in with
another account</a>.</p>"""


def plans_body(*, request_id: str, client_name: str, email: str, csrf: str, prices: dict[str, str] | None,
               tiers: Iterable[Tier], error: str | None = None) -> str:
    """No subscription grants access: the plans (form buttons to Stripe Checkout), or why they are unavailable."""
    cards = []
    for tier in tiers:
        features = "".join(f"<li>{escape(f)}</li>" for f in tier_features(tier))
        available = prices is not None and tier.name in prices
        button = (f'<button class="primary" type="submit" name="tier" value="{escape(tier.name)}">'
                  f'Subscribe to {escape(tier.name)}</button>' if available
                  else '<button type="button" disabled>Not available right now</button>')
        cards.append(f'<article class="tier"><h2>{escape(tier.name)}</h2><p class="price">${tier.price_usd_month}'
                     f'<span>/month</span></p><ul>{features}</ul>{button}</article>')
    return f"""<h1>Choose a plan</h1>
<p class="lead"><strong>{escape(email)}</strong> has no active KAMIYO MCP subscription. Choose a plan to connect
<strong>{escape(client_name)}</strong>; after paying you come straight back here to approve it.</p>
{notice(error)}
<form method="post" action="/oauth/checkout">
  {hidden(request=request_id, csrf=csrf)}
  <div class="tiers">{''.join(cards)}</div>
</form>
<p class="small">Payments are handled by Stripe. Not {escape(email)}?
<a href="/oauth/sign-in?request={escape(request_id, quote=True)}">Sign in with another account</a>.</p>"""


def waiting_body(*, request_id: str) -> str:
    return f"""<h1>Confirming your payment…</h1>
<p class="lead">Stripe is confirming your subscription. This page checks again every few seconds.</p>
<p class="small"><a href="/oauth/consent?request={escape(request_id, quote=True)}">Check now</a></p>"""


def error_body(message: str) -> str:
    return f"""<h1>This sign-in cannot continue</h1>
<p class="lead">{escape(message)}</p>"""
