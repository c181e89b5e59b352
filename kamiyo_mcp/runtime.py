"""The resources a running server holds (store, authority), opened and closed in one place.

HTTP mode opens it in the ASGI lifespan, stdio mode around the stdio loop, the CLI around a
command; tools and routes reach it through the `Runtime` they were built with, never a global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from billing.authority import Authority
from billing.store import Store, open_store
from billing.tokens import TokenCodec
from kamiyo_mcp.secret_file import resolve_jwt_secret
from kamiyo_mcp.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    _authority: Authority | None = field(default=None, repr=False)

    @property
    def authority(self) -> Authority:
        if self._authority is None:
            raise RuntimeError("the runtime is not open")
        return self._authority

    @property
    def store(self) -> Store:
        return self.authority.store

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Runtime]:
        """Open the store and the authority for the duration of the block."""
        codec = TokenCodec(resolve_jwt_secret(self.settings))
        store = await open_store(self.settings.database_url)
        try:
            self._authority = Authority(
                store, codec, public_url=self.settings.public_url,
                token_expiry_days=self.settings.token_expiry_days,
            )
            yield self
        finally:
            self._authority = None
            await store.close()
