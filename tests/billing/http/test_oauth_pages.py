"""The sign-in pages: mailed links, tokens and claim codes, consent, plans → Stripe → consent, and attacks.

The real app in-process, driven by a cookie-keeping client posting the pages' own forms (the
pages need no JavaScript, so this is what a browser does); the mails are read from the outbox.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.billing.http.app_harness import PERSONAL_PRICE, SECRET_KEY, TEAM_PRICE, WEBHOOK_SECRET
from tests.billing.http.delivery_harness import signed_event
from tests.billing.http.oauth_harness import REDIRECT, OAuthServer, oauth_app, query_of
from tests.fakes.stripe_fake import run_fake_stripe
from tests.support_oauth import Form, form_to, forms, sign_in_link

STRANGER = "nobody-here@example.com"


async def email_sign_in(server: OAuthServer, client_id: str, email: str,
                        browser: httpx.AsyncClient | None = None) -> httpx.Response:
    page = await server.sign_in_page(client_id, browser)
    form = form_to(page.text, "/oauth/sign-in")
    return await (browser or server.browser).post(form.action, data=form.submit(email=email))


async def follow_link(server: OAuthServer, link: str, browser: httpx.AsyncClient | None = None) -> httpx.Response:
    """Open the mailed link and press Continue; returns the answer to the POST."""
    page = await (browser or server.browser).get(link)
    assert page.status_code == 200, page.text
    form = form_to(page.text, "/oauth/link")
    return await (browser or server.browser).post(form.action, data=form.submit())


async def test_the_sign_in_page_names_the_app_its_return_host_and_needs_no_script(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register(client_name="Claude"))["client_id"]
        page = await server.sign_in_page(client_id)
        assert "<strong>Claude</strong> wants to use your KAMIYO MCP subscription" in page.text
        assert "127.0.0.1 (this computer)" in page.text and "<script" not in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp and "form-action 'self';" in csp
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oauth" in cookie and "Secure" in cookie
        assert page.headers["cache-control"] == "no-store"
        assert {f.action for f in forms(page.text)} == {"/oauth/sign-in", "/oauth/sign-in/secret"}


async def test_a_mailed_link_signs_in_on_continue_only_once_and_allow_returns_the_code(tmp_path: Path) -> None:
    async with oauth_app(tmp_path, mail=True) as server:
        await server.issue("owner@example.com", "team")
        client_id = (await server.register())["client_id"]
        sent = await email_sign_in(server, client_id, "Owner@Example.com ")
        assert sent.status_code == 200 and "Check your email" in sent.text and "owner@example.com" in sent.text
        (mail,) = await server.mails_to("owner@example.com")
        link = sign_in_link(mail)
        text = mail.get_body(preferencelist=("plain",))
        assert text is not None
        assert "\u201cTest App\u201d (returning to 127.0.0.1 (this computer))" in text.get_content()
        stored = [repr([tuple(row) for row in await server.runtime.store._read.execute_fetchall(f"SELECT * FROM {t}")])
                  for t in ("outbox", "oauth_sign_in_links", "oauth_requests")]
        assert link.split("code=")[1] not in "".join(stored)  # the secret exists only in the mail

        opened = await server.browser.get(link)  # a mail scanner opening it spends nothing
        assert opened.status_code == 200 and "Continue signing in" in opened.text
        continued = await follow_link(server, link)
        assert continued.status_code == 303 and continued.headers["location"].startswith("/oauth/consent?request=")
        consent = await server.browser.get(continued.headers["location"])
        assert "Allow Test App?" in consent.text and "team</strong> plan" in consent.text
        assert "form-action 'self' http://127.0.0.1:40123" in consent.headers["content-security-policy"]

        again = await server.browser.get(link)
        assert again.status_code == 410 and "already used" in again.text

        allowed = await server.decide(consent)
        assert allowed.status_code == 303
        back = allowed.headers["location"]
        assert back.startswith(REDIRECT + "?")
        assert query_of(back)["state"] == "state-1" and query_of(back)["iss"] == "https://kamiyo.test"
        tokens = (await server.exchange(query_of(back)["code"], client_id)).json()
        status = (await server.browser.post("/api/mcp/validate",
                                            headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
        assert status["tier"] == "team" and status["active"] is True
        actions = [row["action"] for row in await server.runtime.store.audit_entries()]
        assert {"oauth.sign_in", "oauth.consent", "oauth.grant"} <= set(actions)


async def test_deny_returns_access_denied_to_the_app(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        denied = await server.decide(await server.consent_page(client_id, await server.issue("no@example.com")),
                                     "Deny")
        assert denied.status_code == 303
        assert query_of(denied.headers["location"])["error"] == "access_denied"
        assert query_of(denied.headers["location"])["state"] == "state-1"


async def test_attack_csrf_on_consent_issues_nothing(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        consent = await server.consent_page(client_id, await server.issue("victim@example.com"))
        form = form_to(consent.text, "/oauth/consent")
        forged = dict(form.submit("Allow"))

        attacker = server.new_browser("203.0.113.66")
        cross_site = await attacker.post("/oauth/consent", data=forged)  # no victim cookie rides along
        assert cross_site.status_code == 403 and "not sent from this site" in cross_site.text
        without_token = await server.browser.post("/oauth/consent", data={**forged, "csrf": ""})
        assert without_token.status_code == 403
        other = await server.consent_page((await server.register())["client_id"], await server.issue("o@example.com"))
        wrong_request = await server.browser.post("/oauth/consent", data={
            **forged, "csrf": form_to(other.text, "/oauth/consent").fields["csrf"]})
        assert wrong_request.status_code == 403

        attacker_signed_in = await server.sign_in_page(client_id, attacker)
        assert attacker_signed_in.status_code == 200
        rows = await server.runtime.store._read.execute_fetchall("SELECT COUNT(*) FROM oauth_codes")
        assert list(rows)[0][0] == 0
        assert (await server.decide(consent)).status_code == 303  # the real form still works


async def test_attack_every_other_form_refuses_a_post_without_its_own_csrf_token_and_changes_nothing(
        tmp_path: Path) -> None:
    with run_fake_stripe() as fake:
        env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "STRIPE_API_BASE": fake.base_url, "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
               "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE}
        async with oauth_app(tmp_path, mail=True, **env) as server:
            client_id = (await server.register())["client_id"]
            token = await server.issue("owner@example.com")
            page = await server.sign_in_page(client_id)
            email_form, secret_form = form_to(page.text, "/oauth/sign-in"), form_to(page.text, "/oauth/sign-in/secret")
            attacker = server.new_browser("203.0.113.77")

            async def refused(form: Form, data: dict[str, str]) -> None:
                cross_site = await attacker.post(form.action, data=data)  # the victim's cookie does not ride along
                blank = await server.browser.post(form.action, data={**data, "csrf": ""})
                borrowed = await server.browser.post(form.action, data={**data, "csrf": email_form.fields["csrf"]
                                                                        if form is not email_form
                                                                        else secret_form.fields["csrf"]})
                assert [cross_site.status_code, blank.status_code, borrowed.status_code] == [403] * 3, form.action
                assert "not sent from this site" in cross_site.text

            await refused(email_form, email_form.submit(email="owner@example.com"))
            assert await server.queued_to("owner@example.com") == []  # no mail was sent on the forged post
            await refused(secret_form, secret_form.submit(secret=token))

            await server.browser.post(email_form.action, data=email_form.submit(email="newcomer@example.com"))
            (link,) = await server.links_to("newcomer@example.com")
            link_form = form_to((await server.browser.get(link)).text, "/oauth/link")
            await refused(link_form, link_form.submit())
            continued = await server.browser.post(link_form.action, data=link_form.submit())
            assert continued.status_code == 303  # the forged posts did not spend the link
            plans = await server.browser.get(continued.headers["location"])
            checkout_form = form_to(plans.text, "/oauth/checkout")
            await refused(checkout_form, checkout_form.submit("Subscribe to team"))
            assert fake.requests_to("POST", "/v1/checkout/sessions") == []  # Stripe was never asked

            assert (await server.token_sign_in(page, token)).status_code == 303  # the real forms still work


async def test_attack_a_used_or_expired_sign_in_link_signs_no_one_in(tmp_path: Path) -> None:
    async with oauth_app(tmp_path, mail=True) as server:
        client_id = (await server.register())["client_id"]
        sent = await email_sign_in(server, client_id, "link@example.com")
        resend = form_to(sent.text, "/oauth/sign-in")  # "Send another link" (same authorization)
        assert (await server.browser.post(resend.action, data=resend.submit())).status_code == 200
        first, second = await server.links_to("link@example.com", 2)
        assert (await follow_link(server, first)).status_code == 303
        thief = server.new_browser("203.0.113.5")
        reused = await thief.get(first)
        assert reused.status_code == 410 and "already used" in reused.text
        sibling = await thief.get(second)  # the request's other links died with the first use
        assert sibling.status_code == 410

        await email_sign_in(server, client_id, "late@example.com")
        (late,) = await server.links_to("late@example.com")
        async with server.runtime.store.transaction() as db:  # its 15 minutes pass
            await db.execute("UPDATE oauth_sign_in_links SET expires_at = 0 WHERE email = 'late@example.com'")
        expired = await server.browser.get(late)
        assert expired.status_code == 410 and "expired" in expired.text
        forged = await server.browser.get(late[:-5] + "AAAAA")
        assert forged.status_code == 404


async def test_attack_email_enumeration_learns_nothing_from_page_mail_or_work(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        await server.issue("customer@example.com", "enterprise")
        client_id = (await server.register())["client_id"]
        statements: list[str] = []

        def record(sql: str) -> None:
            statements.append(re.sub(r"'[^']*'|\b\d+\b", "?", sql))

        store = server.runtime.store
        pages, works = [], []
        for email in ("customer@example.com", STRANGER):
            page = await server.sign_in_page(client_id)
            form = form_to(page.text, "/oauth/sign-in")
            for conn in (store._write, store._read):
                await conn.raw.set_trace_callback(record)
            answer = await server.browser.post(form.action, data=form.submit(email=email))
            for conn in (store._write, store._read):
                await conn.raw.set_trace_callback(None)
            shown = re.sub(r"kar_[\w-]+|[0-9a-f]{64}", "X", answer.text.replace(email, "EMAIL"))  # ids, CSRF
            pages.append((answer.status_code, shown))
            works.append(list(statements))
            statements.clear()
        assert pages[0] == pages[1]
        assert works[0] == works[1] and works[0]  # the same statements: the same work, the same time
        assert not any("customers" in sql for sql in works[0])
        queued = [await server.queued_to(email) for email in ("customer@example.com", STRANGER)]
        assert [len(rows) for rows in queued] == [1, 1]
        assert len({(r.kind, r.subject, r.params, r.body_text) for rows in queued for r in rows}) == 1


async def test_sign_in_mails_are_limited_per_address_and_per_network(tmp_path: Path) -> None:
    async with oauth_app(tmp_path, KAMIYO_OAUTH_SIGN_IN_MAILS_PER_HOUR="2") as server:
        client_id = (await server.register())["client_id"]
        answers = [await email_sign_in(server, client_id, "flood@example.com") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert "Several sign-in emails were sent to this address" in answers[2].text
        assert len(await server.queued_to("flood@example.com")) == 2
    async with oauth_app(tmp_path / "ip", KAMIYO_OAUTH_SIGN_IN_RATE_PER_MINUTE="2") as server:
        client_id = (await server.register())["client_id"]
        # 5 posts at 2 a minute: even across a minute's turn, one window sees a third.
        answers = [await email_sign_in(server, client_id, f"n{i}@example.com") for i in range(5)]
        assert 429 in [a.status_code for a in answers]
        assert all("Too many attempts from this network" in a.text for a in answers if a.status_code == 429)


async def test_a_token_or_a_claim_code_signs_in_and_bad_ones_are_explained(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        token = await server.issue("holder@example.com", "personal")
        for pasted, message in (("not a token", "Paste your KAMIYO token"),
                                (token[:-4] + "AAAA", "That token is not valid: the token&#x27;s signature")):
            page = await server.sign_in_page(client_id)
            answer = await server.token_sign_in(page, pasted)
            assert answer.status_code == 400 and message in answer.text
        page = await server.sign_in_page(client_id)
        signed_in = await server.token_sign_in(page, "Bearer " + token)
        assert signed_in.status_code == 303
        consent = await server.browser.get(signed_in.headers["location"])
        assert "holder@example.com" in consent.text and "personal</strong> plan" in consent.text

        (row,) = await server.runtime.authority.list_tokens("holder@example.com")
        await server.runtime.authority.revoke(row.token_id)
        answer = await server.token_sign_in(await server.sign_in_page(client_id), token)
        assert answer.status_code == 400 and "That token was revoked" in answer.text


async def test_without_a_subscription_the_plans_lead_through_checkout_back_to_the_same_consent(tmp_path: Path
                                                                                               ) -> None:
    with run_fake_stripe() as fake:
        env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "STRIPE_API_BASE": fake.base_url, "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
               "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE}
        async with oauth_app(tmp_path, mail=True, **env) as server:
            client_id = (await server.register())["client_id"]
            await email_sign_in(server, client_id, "newcomer@example.com")
            (link,) = await server.links_to("newcomer@example.com")
            consent_url = (await follow_link(server, link)).headers["location"]
            plans = await server.browser.get(consent_url)
            assert "Choose a plan" in plans.text and "newcomer@example.com</strong> has no active" in plans.text
            assert "https://checkout.stripe.com" in plans.headers["content-security-policy"]
            buttons = {label for f in forms(plans.text) for _, _, label in f.buttons}
            assert buttons == {"Subscribe to personal", "Subscribe to team", "Not available right now"}

            form = form_to(plans.text, "/oauth/checkout")
            opened = await server.browser.post(form.action, data=form.submit("Subscribe to team"))
            assert opened.status_code == 303 and opened.headers["location"].startswith("https://checkout.stripe.com")
            (call,) = fake.requests_to("POST", "/v1/checkout/sessions")
            assert call.params["customer_email"] == "newcomer@example.com"
            assert call.params["success_url"].startswith("https://kamiyo.test/oauth/checkout/return?request=kar_")
            session_id = opened.headers["location"].rsplit("/", 1)[-1].split("#")[0]
            returned = call.params["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)

            waiting = await server.browser.get(returned)  # back before Stripe's webhook
            assert waiting.status_code == 200 and 'http-equiv="refresh"' in waiting.text

            session = fake.complete_session(session_id)
            payload, headers = signed_event("checkout.session.completed", session, created=1_900_000_000)
            assert (await server.browser.post("/api/v1/webhooks/stripe", content=payload,
                                              headers=headers)).status_code == 200
            back = await server.browser.get(returned)
            assert back.status_code == 303 and back.headers["location"] == consent_url
            consent = await server.browser.get(consent_url)
            assert "team</strong> plan" in consent.text  # no second sign-in
            code = query_of((await server.decide(consent)).headers["location"])["code"]
            tokens = (await server.exchange(code, client_id)).json()
            status = (await server.browser.post("/api/mcp/validate", headers={
                "Authorization": f"Bearer {tokens['access_token']}"})).json()
            assert status["tier"] == "team" and status["active"] is True


async def test_a_finished_or_unknown_authorization_is_explained(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        consent = await server.consent_page(client_id, await server.issue("twice@example.com"))
        await server.decide(consent)
        again = await server.decide(consent)
        assert again.status_code == 410 and "already finished" in again.text
        unknown = await server.browser.get("/oauth/sign-in?request=kar_" + "A" * 43)
        assert unknown.status_code == 404 and "Start again from your app" in unknown.text


async def test_the_consent_shows_the_apps_logo_from_its_metadata_and_allows_only_that_image(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register(client_name="Logo App", logo_uri="https://cdn.example/logo.png"))["client_id"]
        consent = await server.consent_page(client_id, await server.issue("logo@example.com"))
        assert '<img class="logo" src="https://cdn.example/logo.png"' in consent.text
        csp = consent.headers["content-security-policy"]
        assert "img-src 'self' https://cdn.example;" in csp and "script-src" not in csp
