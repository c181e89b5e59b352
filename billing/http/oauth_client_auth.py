"""Client authentication at the token and revocation endpoints, against hashed client secrets.

The SDK's `ClientAuthenticator` compares the secret it is sent with a plaintext one on the client
record; our store keeps only the secret's SHA-256, so this one compares digests. Public clients
(`none`: native apps, metadata-document clients) send no secret and rely on PKCE.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import unquote

from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.shared.auth import OAuthClientInformationFull
from starlette.requests import Request

from billing.oauth.provider import OAuthProvider
from billing.oauth.secret import secret_hash


class HashedSecretAuthenticator(ClientAuthenticator):
    def __init__(self, provider: OAuthProvider) -> None:
        super().__init__(provider)
        self._provider = provider

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        basic = _basic_credentials(request.headers.get("authorization"))
        if not isinstance(client_id, str) or not client_id:
            if basic is None:
                raise AuthenticationError("Missing client_id")
            client_id = basic[0]
        client = await self._provider.get_client(client_id)
        if client is None:
            raise AuthenticationError("Invalid client_id")
        method = client.token_endpoint_auth_method or "client_secret_post"
        if method == "none":
            return client
        if method == "client_secret_basic":
            if basic is None or basic[0] != client_id:
                raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
            presented: Any = basic[1]
        else:
            presented = form.get("client_secret")
        stored = await self._provider.client_secret_hash(client_id)
        if not isinstance(presented, str) or not presented or stored is None:
            raise AuthenticationError("Client secret is required")
        if not hmac.compare_digest(secret_hash(presented), stored):
            raise AuthenticationError("Invalid client_secret")
        return client


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    client_id, secret = decoded.split(":", 1)
    return unquote(client_id), unquote(secret)
