"""The sign-in email: a single-use link that connects an app to a KAMIYO account. Pure, no I/O.

Every address gets the same mail, customer or not (the page behind the link says what the account
holds), so neither the mail nor the page that asked for it tells anyone whether an email is a
customer. The app's name comes from its own metadata: it is shown quoted, shortened, beside the
host the browser returns to, and the mail says what to do if the request was not yours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from billing.mail.welcome import OutboxMail

KIND_SIGN_IN = "oauth_sign_in"


def sign_in_url(public_url: str, link: str) -> str:
    return f"{public_url.rstrip('/')}/oauth/link?code={link}"


def sign_in_mail(*, recipient: str, link_url: str, client_name: str, redirect_host: str, expires_at: int,
                 support_email: str) -> OutboxMail:
    """The mail carrying one sign-in link (valid once, until `expires_at`)."""
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%H:%M UTC")
    subject = "Your KAMIYO sign-in link"
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
