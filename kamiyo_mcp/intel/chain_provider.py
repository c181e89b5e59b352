"""The on-chain provider: an Etherscan-compatible ``txlist`` API, reached over httpx.

Its base URL and key are settings (``KAMIYO_CHAIN_API_URL``, ``KAMIYO_CHAIN_API_KEY``) read by the
caller; tests point it at a local HTTP server. The API key is sent as a query parameter and never
appears in a log line or an error message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ChainProviderError
from .fetch import safe_url

_API_KEY_IN_TEXT = re.compile(r"(?i)(apikey=)[^&\s\"']+")


class RedactApiKey(logging.Filter):
    """Masks ``apikey=...`` in log records: httpx logs every request URL at INFO level."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = _API_KEY_IN_TEXT.sub(r"\1***", message), None
        return True


def _install_redaction() -> None:
    for name in ("httpx", "httpcore"):
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactApiKey) for f in log.filters):
            log.addFilter(RedactApiKey())


TIMEOUT_S = 10.0
MAX_TRANSACTIONS = 10_000


@dataclass(frozen=True, slots=True)
class ChainTransaction:
    """One transaction of an account, as the provider lists it."""

    hash: str
    timestamp: int
    from_address: str
    to_address: str
    value_wei: int
    is_error: bool


def _transaction(row: dict[str, Any]) -> ChainTransaction:
    return ChainTransaction(
        hash=str(row.get("hash", "")).lower(),
        timestamp=int(row.get("timeStamp") or 0),
        from_address=str(row.get("from") or "").lower(),
        to_address=str(row.get("to") or row.get("contractAddress") or "").lower(),
        value_wei=int(row.get("value") or 0),
        is_error=str(row.get("isError", "0")) == "1",
    )


class ChainProvider:
    """Lists an account's transactions from an Etherscan-compatible API."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        _install_redaction()

    @property
    def display_url(self) -> str:
        """The base URL without credentials or query string, safe to show and log."""
        return safe_url(self.base_url)

    def __repr__(self) -> str:
        return f"ChainProvider(base_url={self.display_url!r})"

    async def transactions(self, address: str, *, chain_id: int | None = None) -> list[ChainTransaction]:
        """The account's normal transactions, newest first.

        ``chain_id`` is sent as ``chainid`` (Etherscan's multi-chain API); single-chain APIs ignore it.

        Raises:
            ChainProviderError: network failure, HTTP error status, or an API-level error.
        """
        params: dict[str, str] = {
            "module": "account",
            "action": "txlist",
            "address": address,
            "startblock": "0",
            "endblock": "99999999",
            "sort": "desc",
        }
        if chain_id is not None:
            params["chainid"] = str(chain_id)
        if self._api_key:
            params["apikey"] = self._api_key
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.get(self.base_url, params=params)
        except httpx.TimeoutException:
            raise ChainProviderError(
                f"chain provider at {self.display_url} timed out after {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ChainProviderError(
                f"chain provider at {self.display_url} unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise ChainProviderError(f"chain provider at {self.display_url} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ChainProviderError(f"chain provider at {self.display_url} did not answer JSON") from None
        if not isinstance(body, dict):
            raise ChainProviderError(f"chain provider at {self.display_url} answered an unexpected shape")
        result = body.get("result")
        if str(body.get("status")) != "1":
            if isinstance(result, list) and not result or "no transactions" in str(body.get("message", "")).lower():
                return []
            detail = result if isinstance(result, str) else body.get("message", "error")
            raise ChainProviderError(f"chain provider refused the request: {str(detail)[:200]}")
        if not isinstance(result, list):
            raise ChainProviderError(f"chain provider at {self.display_url} answered an unexpected shape")
        try:
            return [_transaction(r) for r in result[:MAX_TRANSACTIONS] if isinstance(r, dict)]
        except (TypeError, ValueError):
            raise ChainProviderError(f"chain provider at {self.display_url} sent a malformed transaction") from None
