"""The welcome email: tier, the claim link, Claude Desktop setup steps, support. Pure, no I/O.

    mail = welcome_mail(recipient=..., tier="team", claim_link=..., ...)     # the mail with its link
    mail = revealed_mail(recipient=..., tier="team", revealed_at=..., ...)   # the token was already shown
    message = to_email_message(mail, sender="KAMIYO <no-reply@…>", message_id="<outbox-7@kamiyo>")

The mail carries a claim link, never a token: the token is minted when the link's page is used.
Which of the two is sent is decided when it is sent (`billing.mail.claim_mail`).
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


def welcome_subject(tier: str, *, resent: bool = False) -> str:
    return "Your new KAMIYO MCP claim link" if resent else f"Welcome to KAMIYO MCP ({tier})"


def welcome_mail(*, recipient: str, tier: str, claim_link: str, public_url: str, support_email: str,
                 expires_at: int, resent: bool = False) -> OutboxMail:
    """The welcome (or re-sent claim) email for a new `tier` subscription."""
    until = _date(expires_at)
    intro = ("Here is a new link to get your KAMIYO MCP access token; earlier claim links no longer work."
             if resent else _thanks(tier))
    steps = [
        "Open the link above and press \"Reveal my token\". The token is shown once: copy it somewhere safe.",
        "Copy the claude_desktop_config.json snippet shown with it.",
        _PASTE_STEP,
        _CHECK_STEP,
    ]
    link_text = [f"Get your token (the link works once, until {until}):", claim_link]
    link_html = (f"<p><a href=\"{escape(claim_link, quote=True)}\">Get your token</a> "
                 f"(the link works once, until {escape(until)}).</p>")
    lost = f"Lost the token later? Write to {support_email} for a new claim link."
    return _mail(recipient, welcome_subject(tier, resent=resent), [intro, _limits(tier)], link_text, link_html,
                 steps, lost, public_url, support_email)


def revealed_mail(*, recipient: str, tier: str, revealed_at: int, public_url: str, support_email: str) -> OutboxMail:
    """The welcome email when the token was already revealed (on the checkout's success page): no link."""
    intro = _thanks(tier)
    revealed = (f"Your access token was already revealed on {_date(revealed_at)}, on the page you saw after paying. "
                "It is shown only once, so this mail carries no link to it.")
    steps = [
        "Find the token and the claude_desktop_config.json snippet you copied from that page.",
        _PASTE_STEP,
        _CHECK_STEP,
    ]
    lost = f"Did not keep the token? Write to {support_email} and we will send you a new claim link."
    return _mail(recipient, welcome_subject(tier), [intro, revealed, _limits(tier)], [], "", steps, lost,
                 public_url, support_email)


_PASTE_STEP = ("In Claude Desktop open Settings > Developer > Edit Config (macOS: ~/Library/Application Support/Claude/"
               "claude_desktop_config.json, Windows: %APPDATA%\\Claude\\claude_desktop_config.json), paste the "
               "\"kamiyo\" entry under \"mcpServers\" (it needs Node.js for npx), save, and restart Claude Desktop.")
_CHECK_STEP = "Ask Claude to \"check my KAMIYO account status\" to confirm it works."


def _mail(recipient: str, subject: str, paragraphs: list[str], link_text: list[str], link_html: str,
          steps: list[str], lost: str, public_url: str, support_email: str) -> OutboxMail:
    base = public_url.rstrip("/")
    rotate = (f"Leaked? Replace it: POST {base}/api/mcp/token/rotate with the old token as "
              "\"Authorization: Bearer <token>\"; the answer holds a new token and its config, and the old one "
              "stops working at once.")
    text = "\n".join([
        *(line for paragraph in paragraphs for line in (paragraph, "")),
        *([*link_text, ""] if link_text else []),
        "Set up Claude Desktop:",
        *(f"{n}. {step}" for n, step in enumerate(steps, 1)), "",
        lost, rotate,
        f"Plans and billing: {base}/pricing", "",
        f"Questions: {support_email}",
        "",
    ])
    items = "".join(f"<li>{escape(step)}</li>" for step in steps)
    mailto = f"<a href=\"mailto:{escape(support_email, quote=True)}\">{escape(support_email)}</a>"
    html = (
        "<!doctype html><html lang=\"en\"><body style=\"font-family:system-ui,sans-serif;line-height:1.5\">"
        + "".join(f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs) + link_html
        + f"<p>Set up Claude Desktop:</p><ol>{items}</ol>"
        f"<p>{escape(lost).replace(escape(support_email), mailto)} {escape(rotate)}</p>"
        f"<p>Plans and billing: <a href=\"{escape(base, quote=True)}/pricing\">{escape(base)}/pricing</a></p>"
        f"<p>Questions: {mailto}</p>"
        "</body></html>"
    )
    return OutboxMail(KIND_WELCOME, recipient, subject, text, html)


def _thanks(tier: str) -> str:
    plan = TIERS.get(tier)
    price = f" (${plan.price_usd_month}/month)" if plan else ""
    return f"Thank you for subscribing to KAMIYO MCP, {tier} tier{price}."


def _limits(tier: str) -> str:
    plan = TIERS.get(tier)
    if plan is None:
        return f"Your plan: {tier}."
    return (f"Your plan: {plan.calls_per_minute} tool calls per minute, {plan.calls_per_day:,} per day, "
            f"{plan.search_results_per_call} search results per call"
            f"{', wallet monitoring' if plan.monitor_wallet else ''}.")


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


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
