"""Mails composed when they are sent, so that a link's secret exists only in the mail itself.

    composers = Composers({"welcome": compose_welcome})        # mail kind -> composer
    composed = await composer(store, db, row, now)             # inside the sender's transaction
    secret = LinkSecret.new()                                  # .secret goes in the mail, .digest in the store

The outbox keeps what renders a mail (its kind, recipient, `link_id` and `params`), never a link's
secret: the composer of the mail's kind generates the secret as the mail is sent, stores only its
digest (in its own table, inside the same transaction) and renders the mail by the state it finds
then. It may also decide the mail no longer fits (`Composed.cancelled`) or must wait
(`Composed.deferred`). Any single-use link sent by mail (a claim, a sign-in link) works this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from billing.claims import claim_hash, new_claim_code
from billing.mail.welcome import OutboxMail
from billing.store.outbox_sql import OutboxRow


@dataclass(frozen=True, slots=True)
class LinkSecret:
    """A fresh single-use link secret: `secret` goes into the mail, only `digest` is stored."""

    secret: str
    digest: str

    @classmethod
    def new(cls) -> LinkSecret:
        secret = new_claim_code()
        return cls(secret, claim_hash(secret))


@dataclass(frozen=True, slots=True)
class Composed:
    """What a queued mail becomes now: a `mail` to send, or why it is `cancelled` or `deferred`."""

    mail: OutboxMail | None = None
    cancelled: str | None = None
    deferred: str | None = None

    @classmethod
    def cancel(cls, reason: str) -> Composed:
        return cls(cancelled=reason)

    @classmethod
    def defer(cls, reason: str) -> Composed:
        return cls(deferred=reason)


# (store, open transaction, the mail's row, now) -> what to send
Composer = Callable[[Any, Any, OutboxRow, int], Awaitable[Composed]]


class Composers:
    """Mail kind → its composer. A kind without one is sent as queued when it was queued whole."""

    def __init__(self, composers: Mapping[str, Composer] | None = None) -> None:
        self._composers = dict(composers or {})

    def register(self, kind: str, composer: Composer) -> None:
        self._composers[kind] = composer

    async def compose(self, store: Any, db: Any, row: OutboxRow, now: int) -> Composed:
        composer = self._composers.get(row.kind)
        if composer is not None:
            return await composer(store, db, row, now)
        if row.body_text:
            return Composed(OutboxMail(row.kind, row.recipient, row.subject, row.body_text, row.body_html))
        # Another process (a newer version, during a rolling deploy) may know this kind: leave it to it.
        return Composed.defer(f"this process has no composer for mails of kind {row.kind!r}")
