"""Fetching an http(s) source, conditionally when its last answer's validators are known.

``If-None-Match`` (the last ETag) and ``If-Modified-Since`` (the last Last-Modified) are sent when
known; a ``304 Not Modified`` means the stored data is current and nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import SourceFetchError

FETCH_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Validators:
    """What a source said about its last good answer, to ask for a newer one only."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source's answer: its text (None when unchanged since ``validators``) and its new validators."""

    text: str | None
    validators: Validators

    @property
    def unchanged(self) -> bool:
        return self.text is None


def safe_url(url: str) -> str:
    """``url`` without credentials or query string: safe to show and log."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


async def fetch(url: str, since: Validators | None = None, *, timeout: float = FETCH_TIMEOUT_S) -> Fetched:
    """``url``'s body, or an unchanged answer when the server says the ``since`` version is current.

    Raises:
        SourceFetchError: network failure or an HTTP status other than 2xx and 304 (names the URL).
    """
    headers = {}
    if since is not None and since.etag:
        headers["If-None-Match"] = since.etag
    if since is not None and since.last_modified:
        headers["If-Modified-Since"] = since.last_modified
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise SourceFetchError(f"{safe_url(url)}: {type(exc).__name__} ({exc or 'no detail'})") from None
    if response.status_code == 304 and headers:
        return Fetched(None, since or Validators())
    if not response.is_success:
        raise SourceFetchError(f"{safe_url(url)}: HTTP {response.status_code}")
    return Fetched(response.text, Validators(response.headers.get("etag"), response.headers.get("last-modified")))
