"""The Python halves of migrations: rewrites of stored values that SQL alone cannot do.

    STEPS[version](db)      run inside the transaction of migration `version`, after its SQL

Written against the store's connection surface (`execute`, `execute_fetchall`, `?` placeholders),
so each step runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing.claims import redact_session_ids
from billing.store.connection import Connection


async def redact_stored_session_ids(db: Connection) -> None:
    """5: Checkout Session ids (the success page's claim secret) leave every stored event.

    Each id becomes its claim digest (`claims.redact_session_ids`), so a replayed event still finds
    or creates the same claim; the ids are gone from payloads, messages and errors.
    """
    rows = await db.execute_fetchall(
        "SELECT event_id, payload, message, last_error FROM stripe_events"
        " WHERE payload LIKE '%cs_%' OR message LIKE '%cs_%' OR last_error LIKE '%cs_%'")
    for event_id, payload, message, last_error in rows:
        redacted = [None if value is None else redact_session_ids(value) for value in (payload, message, last_error)]
        if redacted != [payload, message, last_error]:
            await db.execute("UPDATE stripe_events SET payload = ?, message = ?, last_error = ? WHERE event_id = ?",
                             (*redacted, event_id))


STEPS: dict[int, Callable[[Connection], Awaitable[None]]] = {5: redact_stored_session_ids}
