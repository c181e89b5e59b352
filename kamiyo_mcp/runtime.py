"""The resources a running server holds (stores, authority, providers), opened and closed in one place.

HTTP mode opens it in the ASGI lifespan, stdio mode around the stdio loop, the CLI around a
command; tools and routes reach it through the `Runtime` they were built with, never a global.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from billing.authority import Authority
from billing.store import Store, open_store
from billing.tokens import AUDIENCE, TokenCodec
from kamiyo_mcp.intel.chain_provider import ChainProvider
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.secret_file import resolve_jwt_secret
from kamiyo_mcp.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    # The authority's clock; only tests inject another (through an entry module under tests/).
    clock: Callable[[], float] = time.time
    _authority: Authority | None = field(default=None, repr=False)
    _intel: IntelStore | None = field(default=None, repr=False)
    _chain_provider: ChainProvider | None = field(default=None, repr=False)
    _codec: TokenCodec | None = field(default=None, repr=False)

    @property
    def authority(self) -> Authority:
        if self._authority is None:
            raise RuntimeError("the runtime is not open")
        return self._authority

    @property
    def codec(self) -> TokenCodec:
        """Mints and verifies tokens with the server's one secret."""
        if self._codec is None:
            raise RuntimeError("the runtime is not open")
        return self._codec

    @property
    def store(self) -> Store:
        return self.authority.store

    @property
    def intel(self) -> IntelStore:
        if self._intel is None:
            raise RuntimeError("the runtime is not open")
        return self._intel

    @property
    def chain_provider(self) -> ChainProvider | None:
        """The on-chain transaction provider, when `KAMIYO_CHAIN_API_URL` is set."""
        return self._chain_provider

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Runtime]:
        """Open the stores and the authority for the duration of the block."""
        codec = TokenCodec(resolve_jwt_secret(self.settings), audiences=(AUDIENCE, self.settings.resource_url))
        async with AsyncExitStack() as stack:
            billing = self.settings.billing
            store = await open_store(self.settings.database_url, pool_min=self.settings.database_pool_min,
                                     pool_max=self.settings.database_pool_max, tiers=billing.tiers)
            stack.push_async_callback(store.close)
            intel = await IntelStore.open(self.settings.intel_path, previous=self.settings.intel_previous_path)
            stack.push_async_callback(intel.close)
            self._authority = Authority(
                store, codec, public_url=self.settings.public_url,
                token_expiry_days=self.settings.token_expiry_days,
                support_email=billing.support_email, clock=self.clock, tiers=billing.tiers,
                overage_sold=billing.overage_enabled,
            )
            self._intel = intel
            self._codec = codec
            if self.settings.chain_api_url:
                self._chain_provider = ChainProvider(self.settings.chain_api_url, self.settings.chain_api_key)
            try:
                yield self
            finally:
                self._authority = None
                self._intel = None
                self._chain_provider = None
                self._codec = None
