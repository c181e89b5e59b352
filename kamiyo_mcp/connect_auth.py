"""How `kamiyo-mcp connect` signs in: a token cache file and a loopback page for the OAuth redirect.

    storage = TokenFile.for_server(url)                 # ~/.config/kamiyo-mcp/connect/<host>-<hash>.json, 0600
    async with LoopbackCallback.listening() as callback:
        provider = OAuthClientProvider(url, client_metadata(callback.redirect_uri), storage,
                                       redirect_handler=..., callback_handler=callback.wait)

The cache holds the app's registration and its tokens (the refresh token keeps it signed in), in
the user's config directory, readable by the user alone. The loopback page is
http://127.0.0.1:<free port>/callback (RFC 8252): the browser comes back there after "Allow".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import platformdirs
from mcp.client.auth import TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl, ValidationError

CALLBACK_PATH = "/callback"
WAIT_SECONDS = 600


class SignInFailed(Exception):
    """The browser came back without a code (denied, or an error the server named)."""


def cache_dir() -> Path:
    return Path(platformdirs.user_config_dir("kamiyo-mcp", appauthor=False)) / "connect"


class TokenFile(TokenStorage):
    """The OAuth client's registration and tokens for one server, in one private JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_server(cls, url: str) -> TokenFile:
        host = urlsplit(url).hostname or "server"
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        return cls(cache_dir() / f"{host}-{digest}.json")

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _store(self, key: str, value: object) -> None:
        data = self._load()
        data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        fd, temporary = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    async def get_tokens(self) -> OAuthToken | None:
        try:
            return OAuthToken.model_validate(self._load()["tokens"])
        except (KeyError, ValidationError):
            return None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._store("tokens", tokens.model_dump(mode="json", exclude_none=True))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        try:
            return OAuthClientInformationFull.model_validate(self._load()["client"])
        except (KeyError, ValidationError):
            return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._store("client", client_info.model_dump(mode="json", exclude_none=True))

    def forget(self) -> bool:
        """Delete the cache (sign out locally); False when there was none."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def client_metadata(redirect_uri: str) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name=f"KAMIYO connect ({socket.gethostname()[:40]})", redirect_uris=[AnyUrl(redirect_uri)],
        token_endpoint_auth_method="none", grant_types=["authorization_code", "refresh_token"],
        response_types=["code"])


class LoopbackCallback:
    """A one-shot HTTP listener on 127.0.0.1 for the browser's return from the consent page."""

    def __init__(self, server: asyncio.Server, port: int) -> None:
        self._server = server
        self.port = port
        self.redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        self._result: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    @classmethod
    @contextlib.asynccontextmanager
    async def listening(cls) -> AsyncIterator[LoopbackCallback]:
        holder: list[LoopbackCallback] = []
        server = await asyncio.start_server(lambda r, w: holder[0]._answer(r, w), host="127.0.0.1", port=0)
        port = int(server.sockets[0].getsockname()[1])
        holder.append(cls(server, port))
        try:
            yield holder[0]
        finally:
            server.close()
            await server.wait_closed()

    async def wait(self) -> AuthorizationCodeResult:
        """The code the browser brought back (bounded wait)."""
        query = await asyncio.wait_for(asyncio.shield(self._result), WAIT_SECONDS)
        if "code" not in query:
            raise SignInFailed(f"sign-in did not complete: {query.get('error_description') or query.get('error')}")
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)).strip():
                pass
            target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else ""
            parts = urlsplit(target)
            if parts.path != CALLBACK_PATH:
                _respond(writer, 404, "Not found", "This address only receives the sign-in.")
            else:
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                ok = "code" in query
                _respond(writer, 200, "Signed in" if ok else "Sign-in not completed",
                         "KAMIYO is connected. You can close this tab and return to your app." if ok else
                         f"The sign-in did not complete: {query.get('error_description') or query.get('error')}.")
                if not self._result.done():
                    self._result.set_result(query)
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


def _respond(writer: asyncio.StreamWriter, status: int, title: str, message: str) -> None:
    body = (f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<body style=\"font-family:system-ui,sans-serif;margin:3rem\"><h1>{escape(title)}</h1>"
            f"<p>{escape(message)}</p></body></html>").encode()
    writer.write(f"HTTP/1.1 {status} {title}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "
                 f"{len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + body)
