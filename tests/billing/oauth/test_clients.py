"""What a client may register, and how redirect URIs match (exact; loopback ports free, RFC 8252)."""

from __future__ import annotations

import pytest
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull
from pydantic import AnyUrl

from billing.oauth.clients import (
    KamiyoClient,
    check_client_metadata,
    redirect_host,
    redirect_matches,
    redirect_uri_problem,
    shown_name,
)


@pytest.mark.parametrize(("registered", "requested"), [
    ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback"),
    ("http://127.0.0.1:33418/callback", "http://127.0.0.1:51000/callback"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:8080/callback"),
    ("http://[::1]:1/cb", "http://[::1]:2/cb"),
    ("http://localhost:3000/callback", "http://localhost:49152/callback"),
    ("cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp/oauth/callback"),
])
def test_a_registered_redirect_uri_matches_exactly_or_on_another_loopback_port(registered: str, requested: str
                                                                                ) -> None:
    assert redirect_matches(registered, requested)


@pytest.mark.parametrize(("registered", "requested"), [
    ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback/"),
    ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai:8443/api/mcp/auth_callback"),
    ("https://app.example/cb", "https://evil.example/cb"),
    ("https://app.example/cb", "https://app.example/cb?next=https://evil.example"),
    ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000/other"),
    ("http://127.0.0.1:3000/callback", "http://localhost:3000/callback"),
    ("http://127.0.0.1:3000/callback", "https://127.0.0.1:3000/callback"),
    ("http://127.0.0.1:3000/callback", "http://127.0.0.1.evil.example:3000/callback"),
    ("http://127.0.0.1:3000/callback", "http://user@127.0.0.1:3000/callback"),
])
def test_any_other_difference_is_a_mismatch(registered: str, requested: str) -> None:
    assert not redirect_matches(registered, requested)


@pytest.mark.parametrize(("uri", "problem"), [
    ("http://app.example/cb", "only on the loopback"),
    ("javascript:alert(1)", "javascript: scheme"),
    ("data:text/html,hi", "data: scheme"),
    ("https://app.example/cb#frag", "fragment"),
    ("https://user:pw@app.example/cb", "credentials"),
    ("/relative/callback", "absolute"),
    ("https://app.example/c b", "spaces"),
    ("https://app.example/" + "x" * 2000, "longer than"),
])
def test_unusable_redirect_uris_are_refused_with_the_reason(uri: str, problem: str) -> None:
    reason = redirect_uri_problem(uri)
    assert reason is not None and problem in reason


def test_registration_rules_for_registered_clients_and_metadata_documents() -> None:
    good = OAuthClientInformationFull(client_id="c", redirect_uris=[AnyUrl("http://127.0.0.1:1/cb")])
    check_client_metadata(good, document=False)
    with pytest.raises(RegistrationError) as secret_doc:
        check_client_metadata(good.model_copy(update={"token_endpoint_auth_method": "client_secret_post"}),
                              document=True)
    assert secret_doc.value.error == "invalid_client_metadata"
    with pytest.raises(RegistrationError) as implicit:
        check_client_metadata(good.model_copy(update={"grant_types": ["authorization_code", "implicit"]}),
                              document=False)
    assert "implicit" in (implicit.value.error_description or "")
    with pytest.raises(RegistrationError) as no_uris:
        check_client_metadata(good.model_copy(update={"redirect_uris": []}), document=False)
    assert no_uris.value.error == "invalid_redirect_uri"
    with pytest.raises(RegistrationError):
        check_client_metadata(good.model_copy(update={"logo_uri": AnyUrl("http://logo.example/x.png")}),
                              document=False)


def test_the_client_validates_the_requested_redirect_and_narrows_scopes() -> None:
    client = KamiyoClient(client_id="c", redirect_uris=[AnyUrl("http://127.0.0.1:1/cb"),
                                                        AnyUrl("https://app.example/cb")])
    assert str(client.validate_redirect_uri(AnyUrl("http://127.0.0.1:5555/cb"))) == "http://127.0.0.1:5555/cb"
    with pytest.raises(InvalidRedirectUriError):
        client.validate_redirect_uri(AnyUrl("https://app.example/other"))
    with pytest.raises(InvalidRedirectUriError):
        client.validate_redirect_uri(None)  # two registered: the request must say which
    assert client.validate_scope("mcp offline_access openid") == ["mcp"]
    assert client.validate_scope(None) == ["mcp"]


def test_names_and_hosts_are_shown_short_and_printable() -> None:
    client = OAuthClientInformationFull(client_id="https://app.example/client.json",
                                        client_name="Evil\u202e app " + "x" * 100)
    name = shown_name(client)
    assert len(name) <= 60 and "\u202e" not in name and name.endswith("…")
    assert shown_name(OAuthClientInformationFull(client_id="https://app.example/c.json")) == "app.example"
    assert redirect_host("http://127.0.0.1:9/cb") == "127.0.0.1 (this computer)"
    assert redirect_host("https://claude.ai/api/mcp/auth_callback") == "claude.ai"
    assert redirect_host("cursor://anysphere.cursor-mcp/cb") == "the cursor: app on this device"
