"""Which handler applies which Stripe event type: exact types only, no prefixes or wildcards."""

from __future__ import annotations

from billing.webhooks import checkout, customers, invoices, subscriptions
from billing.webhooks.context import Handler


class HandlerRegistry:
    """Event type → handler. Build the default one with `default_registry()`; tests may add their own."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, event_type: str, handler: Handler, *, replace: bool = False) -> None:
        """Handle `event_type` with `handler`.

        Raises:
            ValueError: `event_type` already has a handler (and `replace` is false).
        """
        if event_type in self._handlers and not replace:
            raise ValueError(f"{event_type} already has a handler")
        self._handlers[event_type] = handler

    def handler_for(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))


def default_registry() -> HandlerRegistry:
    """The handlers of every event family we apply."""
    registry = HandlerRegistry()
    for family in (checkout, subscriptions, invoices, customers):
        for event_type, handler in family.HANDLERS.items():
            registry.register(event_type, handler)
    return registry
