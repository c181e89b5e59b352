"""The welcome email: tier, the claim link, Claude Desktop setup steps, support. Pure, no I/O.

    mail = welcome_mail(recipient=..., tier="team", claim_url=..., ...)   # an OutboxMail row
    message = to_email_message(mail, sender="KAMIYO <no-reply@…>", message_id="<outbox-7@kamiyo>")

The mail carries a claim link, never a token: the token is minted when the link's page is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from html import escape

from billing.tiers import TIERS

KIND_WELCOME = "welcome"


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """One email to write to the outbox (the From header is the sender's, added when sent)."""

    kind: str
    recipient: str
    subject: str
    body_text: str
    body_html: str


def claim_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/claim?code={code}"


def welcome_mail(*, recipient: str, tier: str, claim_link: str, public_url: str, support_email: str,
                 expires_at: int, resent: bool = False) -> OutboxMail:
    """The welcome (or re-sent claim) email for a new `tier` subscription."""
    plan = TIERS.get(tier)
    base = public_url.rstrip("/")
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    subject = "Your new KAMIYO MCP claim link" if resent else f"Welcome to KAMIYO MCP ({tier})"
    price = f" (${plan.price_usd_month}/month)" if plan else ""
    intro = ("Here is a new link to get your KAMIYO MCP access token; earlier claim links no longer work."
             if resent else f"Thank you for subscribing to KAMIYO MCP, {tier} tier{price}.")
    steps = [
        "Open the link below and press \"Reveal my token\". The token is shown once: copy it somewhere safe.",
        "Copy the claude_desktop_config.json snippet shown with it.",
        "In Claude Desktop open Settings > Developer > Edit Config (macOS: ~/Library/Application Support/Claude/"
        "claude_desktop_config.json, Windows: %APPDATA%\\Claude\\claude_desktop_config.json), paste the "
        "\"kamiyo-remote\" entry under \"mcpServers\" (it needs Node.js for npx), save, and restart Claude Desktop.",
        "Ask Claude to \"check my KAMIYO account status\" to confirm it works.",
    ]
    limits = (f"Your plan: {plan.calls_per_minute} tool calls per minute, {plan.calls_per_day:,} per day, "
              f"{plan.search_results_per_call} search results per call"
              f"{', wallet monitoring' if plan.monitor_wallet else ''}." if plan else f"Your plan: {tier}.")
    text = "\n".join([
        intro, "", limits, "",
        f"Get your token (the link works once, until {until}):", claim_link, "",
        "Set up Claude Desktop:",
        *(f"{n}. {step}" for n, step in enumerate(steps, 1)), "",
        f"Lost the token later? Write to {support_email} for a new claim link. Leaked? Replace it with "
        "POST /api/mcp/token/rotate, sent with the old token.",
        f"Plans and billing: {base}/pricing", "",
        f"Questions: {support_email}",
        "",
    ])
    items = "".join(f"<li>{escape(step)}</li>" for step in steps)
    html = (
        "<!doctype html><html lang=\"en\"><body style=\"font-family:system-ui,sans-serif;line-height:1.5\">"
        f"<p>{escape(intro)}</p><p>{escape(limits)}</p>"
        f"<p><a href=\"{escape(claim_link, quote=True)}\">Get your token</a> "
        f"(the link works once, until {escape(until)}).</p>"
        f"<p>Set up Claude Desktop:</p><ol>{items}</ol>"
        f"<p>Lost the token later? Write to "
        f"<a href=\"mailto:{escape(support_email, quote=True)}\">{escape(support_email)}</a> for a new claim link. "
        "Leaked? Replace it with <code>POST /api/mcp/token/rotate</code>, sent with the old token.</p>"
        f"<p>Plans and billing: <a href=\"{escape(base, quote=True)}/pricing\">{escape(base)}/pricing</a></p>"
        "</body></html>"
    )
    return OutboxMail(KIND_WELCOME, recipient, subject, text, html)


def to_email_message(mail: OutboxMail, *, sender: str, message_id: str, date: float | None = None) -> EmailMessage:
    """The MIME message (text with an HTML alternative); a fixed Message-ID lets a resend be deduplicated."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Message-ID"] = message_id
    message["Date"] = formatdate(date, usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body_text)
    message.add_alternative(mail.body_html, subtype="html")
    return message
