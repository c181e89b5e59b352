"""Token delivery wired into the app: the claim/rotate routes, the pages and the outbox sender.

    delivery = DeliveryWiring(runtime)
    routes = [*delivery.routes(), ...]
    async with runtime.opened(), delivery.sending(), ...:    # in the lifespan

Everything is built from the runtime's open store and settings when first needed, never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import Route

from billing.delivery import Delivery
from billing.http.delivery import delivery_routes
from billing.http.pages import page_routes
from billing.mail.claim_mail import claim_mail_composers
from billing.mail.compose import Composers
from billing.mail.outbox_sender import BASE_DELAY_SECONDS, POLL_SECONDS, OutboxSender
from billing.mail.sign_in import KIND_SIGN_IN, sign_in_composer
from kamiyo_mcp.runtime import Runtime


def build_delivery(runtime: Runtime) -> Delivery:
    """A `Delivery` over the runtime's open store, minting with the server's JWT secret."""
    settings = runtime.settings
    return Delivery(runtime.store, runtime.codec, public_url=settings.public_url,
                    support_email=settings.billing.support_email, token_expiry_days=settings.token_expiry_days)


def build_composers(runtime: Runtime) -> Composers:
    """The composers of every mail kind this server sends (they render mails when they are sent)."""
    settings = runtime.settings
    composers = claim_mail_composers(public_url=settings.public_url, support_email=settings.billing.support_email)
    composers.register(KIND_SIGN_IN, sign_in_composer(public_url=settings.public_url,
                                                      support_email=settings.billing.support_email,
                                                      ttl=settings.oauth.sign_in_link_seconds))
    return composers


def build_sender(runtime: Runtime, *, poll_seconds: float = POLL_SECONDS,
                 base_delay: float = BASE_DELAY_SECONDS) -> OutboxSender:
    """An outbox sender over the runtime's open store, with the SMTP settings and every composer."""
    return OutboxSender(runtime.store, runtime.settings.mail, composers=build_composers(runtime),
                        poll_seconds=poll_seconds, base_delay=base_delay)


class DeliveryWiring:
    def __init__(self, runtime: Runtime, *, poll_seconds: float = POLL_SECONDS,
                 base_delay: float = BASE_DELAY_SECONDS) -> None:
        self.runtime = runtime
        self._delivery: Delivery | None = None
        self._poll_seconds = poll_seconds
        self._base_delay = base_delay
        self.sender: OutboxSender | None = None

    def delivery(self) -> Delivery:
        """The `Delivery` of the store open now (rebuilt when the runtime reopened)."""
        store = self.runtime.store
        if self._delivery is None or self._delivery.store is not store:
            self._delivery = build_delivery(self.runtime)
        return self._delivery

    def wake(self) -> None:
        """A mail may have been queued: let the running sender look now rather than at its next poll."""
        if self.sender is not None:
            self.sender.wake()

    def routes(self) -> list[Route]:
        return [
            *delivery_routes(self.delivery, lambda: self.runtime.authority,
                             claim_rate_per_minute=self.runtime.settings.billing.claim_rate_per_minute,
                             rotate_rate_per_minute=self.runtime.settings.billing.rotate_rate_per_minute),
            *page_routes(support_email=self.runtime.settings.billing.support_email,
                         tiers=self.runtime.settings.billing.tiers,
                         overage_sold=self.runtime.settings.billing.overage_enabled,
                         billing_enabled=self.runtime.settings.billing.billing_enabled),
        ]

    @asynccontextmanager
    async def sending(self) -> AsyncIterator[OutboxSender]:
        """Run the outbox sender for the block (it stays idle without SMTP settings)."""
        sender = build_sender(self.runtime, poll_seconds=self._poll_seconds, base_delay=self._base_delay)
        async with sender.running():
            self.sender = sender
            try:
                yield sender
            finally:
                self.sender = None
