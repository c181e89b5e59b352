"""Client ID Metadata Documents: a client whose id is an https URL publishes its metadata there.

    documents = MetadataDocuments(ca_file=None, private_hosts=frozenset())
    client = await documents.get("https://app.example/oauth/client.json")   # KamiyoClient; raises MetadataDocumentError

Fetching a URL that anyone can name is a server-side request forgery risk, so every fetch is
guarded: https only, no redirects followed, the host resolved once and every address checked
(loopback, private, link-local, reserved and multicast addresses are refused unless the operator
named the host in `private_hosts`) and the connection made to the checked address (no DNS
rebinding), 5 s in all, at most 5 KB read. Documents are cached by their Cache-Control max-age
(between 1 minute and 1 day, 1 hour by default); a failure is remembered for a minute.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import certifi
import httpcore
from mcp.server.auth.provider import RegistrationError
from pydantic import ValidationError

from billing.errors import BillingError
from billing.oauth.clients import KIND_DOCUMENT, KamiyoClient, check_client_metadata

MAX_BYTES = 5 * 1024
TIMEOUT_SECONDS = 5.0
DEFAULT_TTL = 3600
MIN_TTL, MAX_TTL = 60, 86_400
FAILURE_TTL = 60
CACHE_SIZE = 1000
USER_AGENT = b"kamiyo-mcp (OAuth client metadata fetch)"
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")
_SECRET_FIELDS = ("client_secret", "client_secret_expires_at")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class MetadataDocumentError(BillingError):
    """A client id URL whose document cannot be used; `reason` says why (safe to show)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_document_client_id(client_id: str) -> bool:
    """Whether a client id names a metadata document (an https URL with a path)."""
    return client_id.startswith("https://") and urlsplit(client_id).path not in ("", "/")


def check_document_url(url: str) -> None:
    """Raises MetadataDocumentError when `url` cannot name a metadata document."""
    if len(url) > 2000:
        raise MetadataDocumentError("the client id URL is too long")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        raise MetadataDocumentError("the client id is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise MetadataDocumentError("a client id URL must be https")
    if parts.fragment or parts.username is not None or parts.password is not None:
        raise MetadataDocumentError("a client id URL must not carry a fragment or credentials")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise MetadataDocumentError("a client id URL must not contain . or .. path segments")


def is_public_address(address: Address) -> bool:
    """Whether an address is on the public internet (also through IPv4-in-IPv6 embeddings)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: Address | None = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _SIX_TO_FOUR:
            embedded = ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not address.is_multicast


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once and connects only to addresses that pass the guard."""

    def __init__(self, private_hosts: frozenset[str]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._private_hosts = private_hosts

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=0, proto=6)
        except OSError:
            raise httpcore.ConnectError(f"the host {host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        allowed = [a for a in addresses if host.lower() in self._private_hosts or is_public_address(a)]
        if not allowed:
            raise BlockedAddressError(f"the host {host} resolves to a private or reserved address")
        failure: Exception | None = None
        for address in dict.fromkeys(allowed):
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class BlockedAddressError(httpcore.ConnectError):
    pass


class MetadataDocuments:
    """Fetches, checks and caches Client ID Metadata Documents."""

    def __init__(self, *, ca_file: str | None = None, private_hosts: Iterable[str] = (),
                 clock: Callable[[], float] = time.time, timeout: float = TIMEOUT_SECONDS) -> None:
        self._ssl = ssl.create_default_context(cafile=ca_file or certifi.where())
        self._private_hosts = frozenset(h.lower() for h in private_hosts)
        self._clock = clock
        self._timeout = timeout
        self._cache: OrderedDict[str, tuple[float, KamiyoClient | MetadataDocumentError]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, url: str) -> KamiyoClient:
        """The client `url` describes (cached).

        Raises:
            MetadataDocumentError: the URL, the fetch or the document is unusable.
        """
        check_document_url(url)
        cached = self._cached(url)
        if cached is None:
            lock = self._locks.setdefault(url, asyncio.Lock())
            async with lock:
                cached = self._cached(url)
                if cached is None:
                    cached = await self._fetch_and_check(url)
            self._locks.pop(url, None)
        if isinstance(cached, MetadataDocumentError):
            raise cached
        return cached

    def _cached(self, url: str) -> KamiyoClient | MetadataDocumentError | None:
        entry = self._cache.get(url)
        if entry is None or entry[0] <= self._clock():
            return None
        self._cache.move_to_end(url)
        return entry[1]

    async def _fetch_and_check(self, url: str) -> KamiyoClient | MetadataDocumentError:
        result: KamiyoClient | MetadataDocumentError
        try:
            body, ttl = await self._fetch(url)
            result = parse_document(url, body)
        except MetadataDocumentError as exc:
            result, ttl = exc, FAILURE_TTL
        self._cache[url] = (self._clock() + ttl, result)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    async def _fetch(self, url: str) -> tuple[bytes, int]:
        pool = httpcore.AsyncConnectionPool(ssl_context=self._ssl, network_backend=GuardedBackend(self._private_hosts),
                                            max_connections=1, retries=0)
        timeouts = {"connect": self._timeout, "read": self._timeout, "write": self._timeout, "pool": self._timeout}
        try:
            with anyio.fail_after(self._timeout):
                async with pool.stream("GET", url, headers=[(b"Accept", b"application/json"),
                                                            (b"User-Agent", USER_AGENT)],
                                       extensions={"timeout": timeouts}) as response:
                    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                    if response.status != 200:
                        raise MetadataDocumentError(f"fetching the client's metadata document answered "
                                                    f"HTTP {response.status} (redirects are not followed)")
                    media = headers.get("content-type", "").split(";")[0].strip().lower()
                    if media != "application/json" and not media.endswith("+json"):
                        raise MetadataDocumentError("the client's metadata document is not application/json")
                    if int(headers.get("content-length", "0") or 0) > MAX_BYTES:
                        raise MetadataDocumentError(f"the client's metadata document is larger than {MAX_BYTES} bytes")
                    body = bytearray()
                    async for chunk in response.aiter_stream():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise MetadataDocumentError(
                                f"the client's metadata document is larger than {MAX_BYTES} bytes")
                    return bytes(body), _ttl(headers.get("cache-control", ""))
        except TimeoutError:
            raise MetadataDocumentError(f"the client's metadata document did not arrive within {self._timeout:g} s"
                                        ) from None
        except BlockedAddressError as exc:
            raise MetadataDocumentError(str(exc)) from None
        except (httpcore.ConnectError, httpcore.TimeoutException, httpcore.NetworkError,
                httpcore.RemoteProtocolError, httpcore.UnsupportedProtocol, ssl.SSLError, ValueError) as exc:
            raise MetadataDocumentError(f"the client's metadata document could not be fetched "
                                        f"({type(exc).__name__})") from None
        finally:
            await pool.aclose()


def parse_document(url: str, body: bytes) -> KamiyoClient:
    """Check a fetched document (draft-ietf-oauth-client-id-metadata-document) and build its client.

    Raises:
        MetadataDocumentError: not a JSON object, another client id, a secret, or unusable metadata.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MetadataDocumentError("the client's metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise MetadataDocumentError("the client's metadata document is not a JSON object")
    if document.get("client_id") != url:
        raise MetadataDocumentError("the document's client_id is not the URL it was fetched from")
    if any(field in document for field in _SECRET_FIELDS):
        raise MetadataDocumentError("a metadata document must not hold a client secret")
    try:
        client = KamiyoClient.model_validate({**document, "kind": KIND_DOCUMENT})
        check_client_metadata(client, document=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise MetadataDocumentError(f"the client's metadata document is invalid ({field}: {first['msg']})") from None
    except RegistrationError as exc:
        raise MetadataDocumentError(f"the client's metadata document is refused: {exc.error_description}") from None
    return client.model_copy(update={"token_endpoint_auth_method": "none", "client_secret": None})


def _ttl(cache_control: str) -> int:
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return MIN_TTL
    match = _MAX_AGE.search(lowered)
    return DEFAULT_TTL if match is None else max(MIN_TTL, min(MAX_TTL, int(match[1])))
