"""The sign-in email: a single-use link that connects an app to a KAMIYO account.

    await queue_sign_in_mail(db, link_id=..., recipient=..., client_name=..., redirect_host=..., now=...)
    composers.register(KIND_SIGN_IN, sign_in_composer(public_url=..., support_email=..., ttl=900))

Queued with a reserved link and no secret; composed when it is sent (billing/mail/compose.py): the
link's secret is made then, its hash sealed into the reserved row, and it is valid 15 minutes from
that moment. A mail for a sign-in that finished or expired meanwhile is cancelled.

Every address gets the same mail, customer or not (the page behind the link says what the account
holds), so neither the mail nor the page that asked for it tells anyone whether an email is a
customer. The app's name comes from its own metadata: it is shown quoted, shortened, beside the
host the browser returns to, and the mail says what to do if the request was not yours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

from billing.mail.compose import Composed, Composer
from billing.mail.welcome import OutboxMail
from billing.oauth.secret import LINK_PREFIX, new_secret, secret_hash
from billing.store.connection import Connection
from billing.store.outbox_sql import OutboxRow, queue_mail

KIND_SIGN_IN = "oauth_sign_in"
SUBJECT = "Your KAMIYO sign-in link"


async def queue_sign_in_mail(db: Connection, *, link_id: str, recipient: str, client_name: str, redirect_host: str,
                             now: int) -> int:
    """Inside the open transaction `db`: the sign-in mail of a reserved link, rendered when sent; its id."""
    params = json.dumps({"client_name": client_name, "redirect_host": redirect_host})
    return await queue_mail(db, kind=KIND_SIGN_IN, recipient=recipient, subject=SUBJECT, subscription_id=None,
                            link_id=link_id, params=params, now=now)


def sign_in_composer(*, public_url: str, support_email: str, ttl: int) -> Composer:
    """Makes the link's secret as the mail is sent (only its hash is stored) and renders the mail."""
    async def compose(store: Any, db: Any, row: OutboxRow, now: int) -> Composed:
        reserved = await store.reserved_sign_in_link(db, row.link_id) if row.link_id else None
        if reserved is None:
            return Composed.cancel("the sign-in link this mail was to carry no longer exists")
        if reserved.request_open_until <= now or reserved.link.used_at is not None:
            return Composed.cancel("the sign-in it was for is finished or expired")
        secret = new_secret(LINK_PREFIX)
        expires_at = min(now + ttl, reserved.request_open_until)
        await store.seal_sign_in_link(db, reserved.link, secret_hash(secret), expires_at=expires_at, now=now)
        params = json.loads(row.params or "{}")
        return Composed(sign_in_mail(recipient=row.recipient, link_url=sign_in_url(public_url, secret),
                                     client_name=str(params.get("client_name") or "an app"),
                                     redirect_host=str(params.get("redirect_host") or "the app"),
                                     expires_at=expires_at, support_email=support_email))

    return compose


def sign_in_url(public_url: str, link: str) -> str:
    return f"{public_url.rstrip('/')}/oauth/link?code={link}"


def sign_in_mail(*, recipient: str, link_url: str, client_name: str, redirect_host: str, expires_at: int,
                 support_email: str) -> OutboxMail:
    """The mail carrying one sign-in link (valid once, until `expires_at`)."""
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%H:%M UTC")
    subject = SUBJECT
    asked = (f"Someone asked to connect the app \u201c{client_name}\u201d (returning to {redirect_host}) to the "
             f"KAMIYO MCP account of {recipient}.")
    text = "\n".join([
        asked, "",
        f"If that was you, open this link on the same computer to continue (it works once, until {until}):",
        link_url, "",
        "If it was not you, ignore this mail: nothing is connected unless the link is opened and you approve.",
        f"Questions: {support_email}", "",
    ])
    html = (
        "<!doctype html><html lang=\"en\"><body style=\"font-family:system-ui,sans-serif;line-height:1.5\">"
        f"<p>{escape(asked)}</p>"
        f"<p>If that was you, <a href=\"{escape(link_url, quote=True)}\">continue signing in</a> on the same "
        f"computer (the link works once, until {escape(until)}).</p>"
        "<p>If it was not you, ignore this mail: nothing is connected unless the link is opened and you approve.</p>"
        f"<p>Questions: <a href=\"mailto:{escape(support_email, quote=True)}\">{escape(support_email)}</a></p>"
        "</body></html>"
    )
    return OutboxMail(KIND_SIGN_IN, recipient, subject, text, html)
