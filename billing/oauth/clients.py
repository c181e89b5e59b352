"""What a client may register and how its redirect URIs are matched. Pure, no I/O.

Redirect URIs are compared exactly, with one exception from RFC 8252 §7.3: a native app's loopback
URI (`http://127.0.0.1/...`, `http://[::1]/...`, `http://localhost/...`) matches on any port, since
the app picks a free port each time it runs. A registered URI is https, loopback http, or a
private-use scheme of a native app (`com.example.app:/callback`); never a fragment, never a
scheme that runs code in the browser.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull
from pydantic import AnyUrl

SCOPE = "mcp"
SUPPORTED_SCOPES = (SCOPE,)
KIND_REGISTERED = "registered"
KIND_DOCUMENT = "metadata_document"
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
MAX_NAME_LENGTH = 200
SHOWN_NAME_LENGTH = 60
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "ftp", "ws",
                               "wss"})
PUBLIC_AUTH_METHODS = ("none",)
SECRET_AUTH_METHODS = ("client_secret_post", "client_secret_basic")


class KamiyoClient(OAuthClientInformationFull):
    """A client as the SDK's handlers see it, with our redirect matching and scope policy.

    `client_secret` is never set here: the store keeps only its hash, and token requests are
    authenticated against that (see billing/http/oauth_client_auth.py).
    """

    kind: str = KIND_REGISTERED

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        registered = [str(uri) for uri in self.redirect_uris or []]
        if redirect_uri is None:
            if len(registered) == 1:
                return AnyUrl(registered[0])
            raise InvalidRedirectUriError("redirect_uri is required: this client registered more than one")
        requested = str(redirect_uri)
        if any(redirect_matches(uri, requested) for uri in registered):
            return redirect_uri
        raise InvalidRedirectUriError(f"redirect_uri {requested[:200]!r} is not registered for this client")

    def validate_scope(self, requested_scope: str | None) -> list[str] | None:
        """The scopes granted: ours among those asked for (RFC 6749 §3.3 lets the server narrow them)."""
        if requested_scope is None:
            return [SCOPE]
        asked = requested_scope.split()
        if len(asked) > 20 or any(len(scope) > 100 for scope in asked):
            raise InvalidScopeError("too many or too long scopes")
        return [scope for scope in SUPPORTED_SCOPES if scope in asked] or [SCOPE]


def redirect_matches(registered: str, requested: str) -> bool:
    """Exact match, or the same loopback URI on another port (RFC 8252 §7.3)."""
    if registered == requested:
        return True
    try:
        reg, req = urlsplit(registered), urlsplit(requested)
        reg.port, req.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        return False
    return (reg.scheme == req.scheme == "http" and reg.hostname in LOOPBACK_HOSTS
            and reg.hostname == req.hostname and reg.path == req.path and reg.query == req.query
            and not reg.fragment and not req.fragment and reg.username is None and req.username is None)


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be a redirect URI, or None when it can."""
    if len(uri) > MAX_URI_LENGTH:
        return f"a redirect URI is longer than {MAX_URI_LENGTH} characters"
    if not uri.isprintable() or any(c.isspace() for c in uri):
        return "a redirect URI must not contain spaces or control characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018
    except ValueError:
        return f"{uri[:100]!r} is not a URL"
    scheme = parts.scheme.lower()
    if not scheme:
        return f"{uri[:100]!r} is not an absolute URI"
    if parts.fragment or "#" in uri:
        return "a redirect URI must not have a fragment"
    if parts.username is not None or parts.password is not None:
        return "a redirect URI must not carry credentials"
    if scheme in FORBIDDEN_SCHEMES:
        return f"the {scheme}: scheme cannot be a redirect URI"
    if scheme == "https":
        return None if parts.hostname else "an https redirect URI needs a host"
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return None
        return ("http redirect URIs are allowed only on the loopback interface (127.0.0.1, [::1] or localhost);"
                " use https")
    # A native app's private-use scheme (RFC 8252 §7.1), e.g. com.example.app:/callback or cursor://...
    return None


def check_client_metadata(client: OAuthClientInformationFull, *, document: bool) -> None:
    """Refuse metadata we will not act on.

    Raises:
        RegistrationError: the redirect URIs, name, grant types or authentication method are unusable.
    """
    uris = [str(uri) for uri in client.redirect_uris or []]
    if not uris:
        raise RegistrationError("invalid_redirect_uri", "at least one redirect_uri is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise RegistrationError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect URIs")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            raise RegistrationError("invalid_redirect_uri", problem)
    if client.client_name is not None and len(client.client_name) > MAX_NAME_LENGTH:
        raise RegistrationError("invalid_client_metadata", f"client_name is longer than {MAX_NAME_LENGTH} characters")
    if client.logo_uri is not None and urlsplit(str(client.logo_uri)).scheme != "https":
        raise RegistrationError("invalid_client_metadata", "logo_uri must be an https URL")
    if "authorization_code" not in client.grant_types:
        raise RegistrationError("invalid_client_metadata", "grant_types must include authorization_code")
    unknown = set(client.grant_types) - {"authorization_code", "refresh_token"}
    if unknown:
        raise RegistrationError("invalid_client_metadata", f"unsupported grant_types: {', '.join(sorted(unknown))}")
    if "code" not in client.response_types:
        raise RegistrationError("invalid_client_metadata", "response_types must include code")
    method = client.token_endpoint_auth_method or ("none" if document else "client_secret_post")
    allowed = PUBLIC_AUTH_METHODS if document else PUBLIC_AUTH_METHODS + SECRET_AUTH_METHODS
    if method not in allowed:
        raise RegistrationError("invalid_client_metadata",
                                f"token_endpoint_auth_method must be one of {', '.join(allowed)}")


def shown_name(client: OAuthClientInformationFull) -> str:
    """The client's name as pages and mails show it: printable, short, or its id's host."""
    raw = client.client_name or ""
    cleaned = "".join(c for c in unicodedata.normalize("NFKC", raw) if c.isprintable()).strip()
    if not cleaned:
        cleaned = urlsplit(client.client_id).hostname or "an unnamed application"
    return cleaned if len(cleaned) <= SHOWN_NAME_LENGTH else cleaned[:SHOWN_NAME_LENGTH - 1] + "…"


def redirect_host(redirect_uri: str) -> str:
    """Where the browser goes after consent, as a person reads it (host, or the app's scheme)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        return f"{host} (this computer)" if host in LOOPBACK_HOSTS else host
    return f"the {parts.scheme}: app on this device"
