"""The authorization server's endpoints over HTTP, and the attacks they must refuse.

The real app in-process (opened inside each test: its lifespan's task group must be left by the
task that entered it); clients register, authorize and exchange as real ones do; the access
tokens are then used on /mcp and /api/mcp/validate.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from billing.tokens import AUDIENCE, TokenCodec
from tests.billing.http.oauth_harness import (
    CHALLENGE,
    PUBLIC_URL,
    REDIRECT,
    RESOURCE,
    OAuthServer,
    oauth_app,
    query_of,
)
from tests.support import JWT_SECRET

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Host": "kamiyo.test"}


async def validate(server: OAuthServer, token: str) -> dict[str, object]:
    answer = await server.browser.post("/api/mcp/validate", headers={"Authorization": f"Bearer {token}"})
    return dict(answer.json())


# ---- discovery ----------------------------------------------------------------------------------

async def test_the_metadata_names_this_issuer_and_what_it_supports(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        answer = await server.browser.get("/.well-known/oauth-authorization-server", headers={"Origin": "https://x.y"})
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        assert answer.headers["access-control-allow-origin"] == "*"
        meta = answer.json()
        assert meta["issuer"] == PUBLIC_URL  # exactly: no trailing slash (RFC 8414 §3.3)
        assert meta["authorization_endpoint"] == PUBLIC_URL + "/authorize"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert meta["client_id_metadata_document_supported"] is True
        assert meta["authorization_response_iss_parameter_supported"] is True
        assert "none" in meta["token_endpoint_auth_methods_supported"]
        assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]


async def test_the_401_and_the_resource_metadata_lead_to_this_authorization_server(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        unauthenticated = await server.browser.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert unauthenticated.status_code == 401
        challenge = unauthenticated.headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
        assert metadata_url == PUBLIC_URL + "/.well-known/oauth-protected-resource/mcp"
        assert 'scope="mcp"' in challenge  # the scope to ask for, as the resource metadata lists it
        resource = (await server.browser.get(metadata_url.removeprefix(PUBLIC_URL))).json()
        assert resource["resource"] == RESOURCE and resource["authorization_servers"] == [PUBLIC_URL]
        assert resource["scopes_supported"] == ["mcp"]
        issuer = resource["authorization_servers"][0]
        found = await server.browser.get(issuer.removeprefix(PUBLIC_URL) + "/.well-known/oauth-authorization-server")
        assert found.status_code == 200 and found.json()["issuer"] == issuer


async def test_with_oauth_switched_off_nothing_advertises_or_serves_an_authorization_server(tmp_path: Path) -> None:
    async with oauth_app(tmp_path, KAMIYO_OAUTH_ENABLED="false") as server:
        unauthenticated = await server.browser.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert unauthenticated.status_code == 401
        assert "resource_metadata=" in unauthenticated.headers["www-authenticate"]
        assert "scope=" not in unauthenticated.headers["www-authenticate"]  # no authorization server to ask
        resource = (await server.browser.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert resource["resource"] == RESOURCE and not resource.get("authorization_servers")
        for path in ("/.well-known/oauth-authorization-server", "/authorize", "/oauth/sign-in"):
            assert (await server.browser.get(path)).status_code == 404, path
        for path in ("/register", "/token", "/revoke"):
            assert (await server.browser.post(path, json={})).status_code == 404, path
        bearer = await server.issue("bearer-only@example.com", "personal")
        answer = await server.browser.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS,
                                                                              "Authorization": f"Bearer {bearer}"})
        assert answer.status_code == 200, answer.text


# ---- the whole grant ----------------------------------------------------------------------------

async def test_an_access_token_works_on_mcp_and_bearer_tokens_keep_working(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        bearer = await server.issue("both@example.com", "personal")
        client_id = (await server.register())["client_id"]
        tokens = (await server.exchange(await server.code_for(client_id, bearer), client_id)).json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600 and tokens["scope"] == "mcp"
        for token in (tokens["access_token"], bearer):
            answer = await server.browser.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS,
                                                                                  "Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            status = await validate(server, token)
            assert status["active"] is True and status["tier"] == "personal"


async def test_a_confidential_client_authenticates_with_its_secret_which_is_stored_hashed(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client = await server.register(token_endpoint_auth_method="client_secret_post")
        secret = client["client_secret"]
        rows = await server.runtime.store._read.execute_fetchall("SELECT * FROM oauth_clients")
        assert secret not in repr([tuple(r) for r in rows])
        code = await server.code_for(client["client_id"], await server.issue("conf@example.com"))
        wrong = await server.exchange(code, client["client_id"], client_secret="not-" + secret)
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert (await server.exchange(code, client["client_id"], client_secret=secret)).status_code == 200

        basic = await server.register(token_endpoint_auth_method="client_secret_basic")
        code = await server.code_for(basic["client_id"], await server.issue("basic@example.com"))
        credentials = base64.b64encode(f"{basic['client_id']}:{basic['client_secret']}".encode()).decode()
        answer = await server.browser.post("/token", headers={"Authorization": f"Basic {credentials}"}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": basic["client_id"],
            "code_verifier": "dBjftJeZ4CVP-mJ92K9ZYfYkm1yaE6VT6SRkxr8Er0M"})
        assert answer.status_code == 200, answer.text


async def test_revocation_by_the_client_ends_the_grant(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id, tokens = await server.tokens("revoker@example.com")
        answer = await server.browser.post("/revoke", data={"token": tokens["refresh_token"], "client_id": client_id,
                                                            "token_type_hint": "refresh_token"})
        assert answer.status_code == 200
        status = await validate(server, tokens["access_token"])
        assert status["revoked"] is True and status["active"] is False
        assert (await server.refresh(tokens["refresh_token"], client_id)).json()["error"] == "invalid_grant"
        unknown = await server.browser.post("/revoke", data={"token": "nonsense", "client_id": client_id})
        assert unknown.status_code == 200  # RFC 7009: nothing to say about unknown tokens


# ---- attacks ------------------------------------------------------------------------------------

async def test_attack_code_replay_is_refused_and_revokes_the_first_exchange(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        code = await server.code_for(client_id, await server.issue("replay@example.com"))
        first = await server.exchange(code, client_id)
        assert first.status_code == 200
        second = await server.exchange(code, client_id)
        assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
        assert second.headers["cache-control"] == "no-store"
        assert (await validate(server, first.json()["access_token"]))["revoked"] is True


async def test_attack_a_wrong_pkce_verifier_is_refused(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        code = await server.code_for(client_id, await server.issue("pkce@example.com"))
        wrong = await server.exchange(code, client_id, code_verifier="x" * 43)
        assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_grant",
                                                             "error_description": "incorrect code_verifier"}
        missing = await server.exchange(code, client_id, code_verifier=None)  # type: ignore[arg-type]
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_attack_a_plain_pkce_challenge_is_refused_at_authorize(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        plain = await server.authorize(client_id, code_challenge_method="plain")
        assert plain.status_code == 302 and query_of(plain.headers["location"])["error"] == "invalid_request"
        short = await server.authorize(client_id, code_challenge="too-short")
        assert short.status_code == 302 and "S256 challenge" in query_of(short.headers["location"])["error_description"]


async def test_attack_an_unregistered_redirect_uri_never_receives_anything(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        evil = await server.authorize(client_id, redirect_uri="https://evil.example/steal")
        assert evil.status_code == 400 and "location" not in evil.headers
        assert "not registered for this client" in evil.text and evil.headers["content-type"].startswith("text/html")
        moved_port = await server.authorize(client_id, redirect_uri="http://127.0.0.1:1/callback")
        assert moved_port.status_code == 302  # loopback: any port (RFC 8252)
        code = await server.code_for(client_id, await server.issue("redirect@example.com"))
        other = await server.exchange(code, client_id, redirect_uri="http://127.0.0.1:40123/other")
        assert other.status_code == 400 and other.json()["error"] == "invalid_request"


async def test_attack_tokens_for_another_resource_are_neither_issued_nor_accepted(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id = (await server.register())["client_id"]
        asked = await server.authorize(client_id, resource="https://other.example/mcp")
        assert asked.status_code == 302
        assert query_of(asked.headers["location"]) | {} == {
            "error": "invalid_target", "state": "state-1",
            "error_description": f"this server issues tokens only for the resource {RESOURCE}"}
        code = await server.code_for(client_id, await server.issue("resource@example.com"))
        at_token = await server.exchange(code, client_id, resource="https://other.example/mcp")
        assert at_token.status_code == 400 and at_token.json()["error"] == "invalid_target"

        # A token signed with our own key but minted for another resource is refused here.
        codec = TokenCodec(JWT_SECRET, audiences=(AUDIENCE, "https://other.example/mcp"))
        now = int(time.time())
        foreign, _ = codec.mint(sub="usr_x", tier="enterprise", sid="grant_x", now=now, expires_at=now + 600,
                                audience="https://other.example/mcp")
        refused = await server.browser.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS,
                                                                               "Authorization": f"Bearer {foreign}"})
        assert refused.status_code == 401 and "another audience" in refused.json()["error_description"]


async def test_attack_a_reused_refresh_token_kills_the_whole_family(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id, first = await server.tokens("family@example.com")
        second = (await server.refresh(first["refresh_token"], client_id)).json()
        assert second["refresh_token"] != first["refresh_token"]
        reused = await server.refresh(first["refresh_token"], client_id)
        assert reused.status_code == 400 and "already used" in reused.json()["error_description"]
        assert (await validate(server, second["access_token"]))["revoked"] is True
        newest = await server.refresh(second["refresh_token"], client_id)
        assert newest.status_code == 400 and newest.json()["error"] == "invalid_grant"


async def test_attack_a_metadata_document_on_a_private_address_is_not_fetched(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        refused = await server.authorize("https://127.0.0.1:9/client.json")
        assert refused.status_code == 400 and "private or reserved address" in refused.text
        metadata = await server.authorize("https://169.254.169.254/latest/meta-data.json")
        assert metadata.status_code == 400 and "private or reserved address" in metadata.text


async def test_attack_registrations_with_unsafe_redirects_are_refused(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        for uri, error in (("http://evil.example/cb", "only on the loopback"), ("javascript:alert(1)", "javascript:")):
            answer = await server.browser.post("/register", json={"redirect_uris": [uri], "client_name": "x"})
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_redirect_uri"
            assert error in answer.json()["error_description"]


async def test_attack_registration_floods_are_limited_per_address(tmp_path: Path) -> None:
    async with oauth_app(tmp_path, KAMIYO_OAUTH_REGISTER_RATE_PER_MINUTE="3") as server:
        # 7 requests at 3 a minute: even if a minute turns between two of them, one window sees a 4th.
        answers = [await server.browser.post("/register", json={"redirect_uris": [REDIRECT]}) for _ in range(7)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited and all(a.json()["error"] == "slow_down" for a in limited)
        assert {a.status_code for a in answers} == {201, 429}


async def test_an_unknown_client_gets_a_page_not_a_redirect(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        answer = await server.authorize("no-such-client")
        assert answer.status_code == 400 and "not found" in answer.text
        assert "text/html" in answer.headers["content-type"] and CHALLENGE not in answer.text


async def test_an_apps_revoked_token_gets_401_at_a_new_session_so_the_app_signs_in_again(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        bearer = await server.issue("reauth@example.com", "team")
        client_id = (await server.register())["client_id"]
        tokens = (await server.exchange(await server.code_for(client_id, bearer), client_id)).json()
        answer = await server.browser.post("/revoke", data={"token": tokens["access_token"], "client_id": client_id})
        assert answer.status_code == 200
        for token, status in ((tokens["access_token"], 401), (bearer, 200)):
            opened = await server.browser.post("/mcp", json=INITIALIZE, headers={
                **MCP_HEADERS, "Authorization": f"Bearer {token}"})
            assert opened.status_code == status, opened.text
        refused = await server.browser.post("/mcp", json=INITIALIZE, headers={
            **MCP_HEADERS, "Authorization": f"Bearer {tokens['access_token']}"})
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "revoked" in refused.json()["error_description"]


async def test_malformed_requests_and_wrong_methods_get_a_clear_4xx_never_a_500(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        cases: list[tuple[str, str, dict[str, object], int]] = [
            ("GET", "/authorize", {}, 400),
            ("POST", "/token", {"data": {"grant_type": "authorization_code"}}, 401),
            ("POST", "/token", {"data": {"grant_type": "refresh_token", "client_id": "x", "refresh_token": "y"}}, 401),
            ("POST", "/register", {"content": b"not json"}, 400),
            ("POST", "/register", {"json": {"redirect_uris": "x"}}, 400),
            ("POST", "/revoke", {"data": {"token": "t"}}, 401),
            ("PUT", "/token", {}, 405), ("GET", "/register", {}, 405), ("DELETE", "/authorize", {}, 405),
            ("GET", "/oauth/sign-in?request=" + "x" * 5000, {}, 404),
            ("POST", "/oauth/sign-in", {"data": {"request": "kar_x", "email": "a", "csrf": "b"}}, 404),
            ("POST", "/oauth/link", {"data": {"code": "zz"}}, 403),
            ("GET", "/oauth/link?code=ksl_" + "A" * 43, {}, 404),
            ("POST", "/oauth/consent", {"data": {"decision": "allow"}}, 403),
            ("GET", "/oauth/checkout", {}, 405),
        ]
        for method, url, options, status in cases:
            answer = await server.browser.request(method, url, **options)  # type: ignore[arg-type]
            assert answer.status_code == status, (method, url, answer.status_code, answer.text[:200])
            assert "Traceback" not in answer.text
            if status == 405:
                assert answer.headers["allow"]
