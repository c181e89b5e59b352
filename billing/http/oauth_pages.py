"""The sign-in pages of an authorization: email → mailed link → consent (or plans → Stripe → consent).

    GET  /oauth/sign-in?request=R        who asks (the app's name, where it returns), the email form
    POST /oauth/sign-in                  mail a sign-in link (same answer for every address)
    POST /oauth/sign-in/secret           sign in with a KAMIYO token or claim code instead
    GET  /oauth/link?code=L              the mailed link: "Continue" (a GET spends nothing)
    POST /oauth/link                     spend the link, sign this browser in
    GET  /oauth/consent?request=R        the app, its redirect host and the plan; or the plans
    POST /oauth/consent                  allow → the app's redirect URI with the code; deny → access_denied
    POST /oauth/checkout                 a plan → Stripe Checkout, returning to the same authorization
    GET  /oauth/checkout/return?request=R  back from Stripe: on to consent once the subscription is in

Every POST checks this browser's CSRF token and a per-IP limit; a refusal is a page that says what
to do, with the status that fits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing.checkout_request import (
    CheckoutRequest,
    checkout_session_params,
    client_reference,
    with_session_placeholder,
)
from billing.config import BillingConfig
from billing.errors import StoreError
from billing.http import oauth_html as html
from billing.http.browser_session import BrowserSessions, CSRFError, Session
from billing.http.ip_rate_limit import PerIPLimiter
from billing.oauth.clients import redirect_host, shown_name
from billing.oauth.secret import secret_hash
from billing.oauth.sign_in import ConsentView, SignIn, SignInError
from billing.stripe_gateway import StripeGateway, StripeGatewayError

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
WAIT_SECONDS = 3


@dataclass(frozen=True)
class PageDeps:
    sign_in: Callable[[], SignIn]
    sessions: BrowserSessions
    billing: BillingConfig
    gateway: Callable[[], StripeGateway | None]
    public_url: str
    rate_per_minute: int
    mail_queued: Callable[[], None] = lambda: None  # wakes the outbox sender


def oauth_page_routes(deps: PageDeps, *, clock: Callable[[], float] = time.time) -> list[Route]:
    limiter = PerIPLimiter(deps.rate_per_minute, clock=clock)
    sessions = deps.sessions

    def limited(request: Request) -> None:
        retry_after = limiter.hit(request.client.host if request.client else "unknown")
        if retry_after is not None:
            raise SignInError(429, "rate_limited", f"Too many attempts from this network; wait {retry_after} "
                                                   "seconds and try again.")

    async def sign_in_page(request: Request, request_id: str, session: Session, *, status: int = 200,
                           error: str | None = None, email: str = "") -> Response:
        pending, client = await deps.sign_in().pending(request_id)
        body = html.sign_in_body(request_id=request_id, client_name=shown_name(client),
                                 host=redirect_host(pending.redirect_uri),
                                 csrf_email=sessions.csrf(session, "email", request_id),
                                 csrf_secret=sessions.csrf(session, "secret", request_id), error=error, email=email)
        return sessions.keep(html.page("Sign in", body, status=status), session)

    async def get_sign_in(request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        return await sign_in_page(request, request_id, sessions.current(request))

    async def post_email(request: Request) -> Response:
        form, session = await request.form(), sessions.current(request)
        request_id, email = _field(form, "request"), _field(form, "email")
        try:
            sessions.check(form, session, "email", request_id)
            limited(request)
            address = await deps.sign_in().send_link(request_id, email)
            deps.mail_queued()
        except (CSRFError, SignInError) as exc:
            status, message = (403, str(exc)) if isinstance(exc, CSRFError) else (exc.status, exc.message)
            if isinstance(exc, SignInError) and exc.code in ("unknown_request", "request_expired", "request_finished"):
                raise
            return await sign_in_page(request, request_id, session, status=status, error=message, email=email)
        _, client = await deps.sign_in().pending(request_id)
        body = html.check_email_body(email=address, client_name=shown_name(client), request_id=request_id,
                                     csrf=sessions.csrf(session, "email", request_id),
                                     minutes=deps.sign_in().config.sign_in_link_seconds // 60)
        return sessions.keep(html.page("Check your email", body), session)

    async def post_secret(request: Request) -> Response:
        form, session = await request.form(), sessions.current(request)
        request_id = _field(form, "request")
        try:
            sessions.check(form, session, "secret", request_id)
            limited(request)
            await deps.sign_in().use_secret(request_id, _field(form, "secret"), session.hash)
        except (CSRFError, SignInError) as exc:
            status, message = (403, str(exc)) if isinstance(exc, CSRFError) else (exc.status, exc.message)
            if isinstance(exc, SignInError) and exc.code in ("unknown_request", "request_expired", "request_finished"):
                raise
            return await sign_in_page(request, request_id, session, status=status, error=message)
        return _see_other(f"/oauth/consent?request={request_id}")

    async def get_link(request: Request) -> Response:
        session, code = sessions.current(request), request.query_params.get("code", "")
        link, pending, client = await deps.sign_in().link(code)
        body = html.link_body(code=code, email=link.email, client_name=shown_name(client),
                              host=redirect_host(pending.redirect_uri),
                              csrf=sessions.csrf(session, "link", secret_hash(code)))
        return sessions.keep(html.page("Continue signing in", body), session)

    async def post_link(request: Request) -> Response:
        form, session = await request.form(), sessions.current(request)
        code = _field(form, "code")
        sessions.check(form, session, "link", secret_hash(code))
        limited(request)
        request_id = await deps.sign_in().use_link(code, session.hash)
        return _see_other(f"/oauth/consent?request={request_id}")

    async def consent_page(request_id: str, session: Session, *, error: str | None = None,
                           status: int = 200) -> Response:
        view = await deps.sign_in().consent(request_id, session.hash)
        if view.entitlement is None:
            prices = deps.billing.prices if deps.billing.billing_enabled else None
            body = html.plans_body(request_id=request_id, client_name=view.client_name, email=view.email,
                                   csrf=sessions.csrf(session, "checkout", request_id), prices=prices,
                                   tiers=deps.billing.tiers, error=error)
            return sessions.keep(html.page("Choose a plan", body, status=status,
                                           form_targets=[html.STRIPE_CHECKOUT_ORIGIN]), session)
        body = html.consent_body(request_id=request_id, client_name=view.client_name, host=view.redirect_host,
                                 email=view.email, tier=deps.billing.tiers[view.entitlement.tier],
                                 csrf=sessions.csrf(session, "consent", request_id), logo=_logo(view))
        pending, _ = await deps.sign_in().pending(request_id)
        targets = [source for source in (html.origin_source(pending.redirect_uri),) if source]
        images = [source for source in (html.origin_source(_logo(view) or ""),) if source]
        return sessions.keep(html.page("Allow access", body, status=status, form_targets=targets, images=images),
                             session)

    async def get_consent(request: Request) -> Response:
        request_id, session = request.query_params.get("request", ""), sessions.current(request)
        try:
            return await consent_page(request_id, session)
        except SignInError as exc:
            if exc.code == "not_signed_in":
                return _see_other(f"/oauth/sign-in?request={request_id}")
            raise

    async def post_consent(request: Request) -> Response:
        form, session = await request.form(), sessions.current(request)
        request_id = _field(form, "request")
        sessions.check(form, session, "consent", request_id)
        if _field(form, "decision") == "allow":
            return _see_other(await deps.sign_in().approve(request_id, session.hash))
        return _see_other(await deps.sign_in().deny(request_id, session.hash))

    async def post_checkout(request: Request) -> Response:
        form, session = await request.form(), sessions.current(request)
        request_id, tier = _field(form, "request"), _field(form, "tier")
        sessions.check(form, session, "checkout", request_id)
        limited(request)
        view = await deps.sign_in().consent(request_id, session.hash)
        if view.entitlement is not None:
            return _see_other(f"/oauth/consent?request={request_id}")
        price = deps.billing.price_for_tier(tier)
        gateway = deps.gateway()
        if gateway is None or price is None:
            return await consent_page(request_id, session, status=503,
                                      error="That plan cannot be bought right now; please try again later.")
        try:
            session_url = await _checkout(deps, view, tier, price, gateway)
        except StripeGatewayError:
            logger.exception("oauth checkout: Stripe refused the session")
            return await consent_page(request_id, session, status=502,
                                      error="Stripe could not start the checkout; please try again in a moment.")
        return _see_other(session_url)

    async def checkout_return(request: Request) -> Response:
        request_id, session = request.query_params.get("request", ""), sessions.current(request)
        view = await deps.sign_in().consent(request_id, session.hash)
        if view.entitlement is not None:
            return _see_other(f"/oauth/consent?request={request_id}")
        return html.page("Confirming your payment", html.waiting_body(request_id=request_id),
                         refresh_seconds=WAIT_SECONDS)

    return [
        _route("/oauth/sign-in", get=get_sign_in, post=post_email),
        _route("/oauth/sign-in/secret", post=post_secret),
        _route("/oauth/link", get=get_link, post=post_link),
        _route("/oauth/consent", get=get_consent, post=post_consent),
        _route("/oauth/checkout", post=post_checkout),
        _route("/oauth/checkout/return", get=checkout_return),
    ]


def _route(path: str, *, get: Endpoint | None = None, post: Endpoint | None = None) -> Route:
    """One route for every method (GET also answers HEAD); a method the page has not is a 405 page."""
    handlers = {method: handler for method, handler in (("GET", get), ("HEAD", get), ("POST", post)) if handler}
    allow = ", ".join(sorted(handlers))

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            response = html.page("Not allowed", html.error_body(f"{request.method} is not used here."), status=405)
            response.headers["Allow"] = allow
            return response
        return await _guarded(handler)(request)

    return Route(path, dispatch, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


async def _checkout(deps: PageDeps, view: ConsentView, tier: str, price: str, gateway: StripeGateway) -> str:
    request = await deps.sign_in().store.oauth_request(view.request_id)
    assert request is not None
    user_id = request.user_id
    if request.signed_in_by == "email":
        known = await deps.sign_in().store.customer_for_email(view.email)
        user_id = known.user_id if known else None
    stripe_customer = await deps.sign_in().store.stripe_customer_of(user_id) if user_id else None
    base = deps.public_url
    checkout = CheckoutRequest(
        tier, price, view.email,
        with_session_placeholder(f"{base}/oauth/checkout/return?request={view.request_id}"),
        f"{base}/oauth/consent?request={view.request_id}")
    params = checkout_session_params(checkout, stripe_customer_id=stripe_customer,
                                     client_reference_id=client_reference(view.email, user_id),
                                     automatic_tax=deps.billing.checkout_automatic_tax)
    session = await gateway.create_checkout_session(params, None)
    logger.info("oauth: checkout for tier %s opened for a signed-in buyer", tier)
    return str(session["url"])


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Answer a refused step with a page saying what to do, never a stack trace."""
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except SignInError as exc:
            return html.page("Sign-in problem", html.error_body(exc.message), status=exc.status)
        except CSRFError as exc:
            return html.page("Sign-in problem", html.error_body(str(exc)), status=403)
        except StoreError:
            logger.exception("oauth pages: the store failed on %s %s", request.method, request.url.path)
            return html.page("Try again shortly", html.error_body("The account service is unavailable right now; "
                                                                  "please try again in a minute."), status=503)
    return guarded


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:4096] if isinstance(value, str) else ""


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def _logo(view: ConsentView) -> str | None:
    logo = view.client.logo_uri
    return str(logo) if logo is not None and str(logo).startswith("https://") else None
