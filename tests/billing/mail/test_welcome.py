"""The welcome email, composed without servers."""

from __future__ import annotations

import email
import email.policy

from billing.mail.welcome import claim_url, revealed_mail, to_email_message, welcome_mail

LINK = claim_url("https://kamiyo.test/", "c0de-_XYZ" * 5)


def test_the_welcome_mail_has_the_tier_the_link_setup_steps_and_support_in_text_and_html() -> None:
    mail = welcome_mail(recipient="a@example.com", tier="enterprise", claim_link=LINK,
                        public_url="https://kamiyo.test", support_email="help@kamiyo.test", expires_at=1_900_000_000)

    assert LINK == "https://kamiyo.test/claim?code=" + "c0de-_XYZ" * 5
    assert "enterprise" in mail.subject
    for body in (mail.body_text, mail.body_html):
        assert LINK in body and "help@kamiyo.test" in body and "Claude Desktop" in body
        assert "$299/month" in body and "https://kamiyo.test/pricing" in body
    assert "<script" not in mail.body_html


def test_a_resent_mail_says_earlier_links_are_dead() -> None:
    mail = welcome_mail(recipient="a@example.com", tier="personal", claim_link=LINK, public_url="https://k.test",
                        support_email="s@k.test", expires_at=1_900_000_000, resent=True)
    assert "no longer work" in mail.body_text and "new" in mail.subject


def test_the_message_is_text_with_an_html_alternative_and_a_fixed_message_id() -> None:
    mail = welcome_mail(recipient="a@example.com", tier="team", claim_link=LINK, public_url="https://k.test",
                        support_email="s@k.test", expires_at=1_900_000_000)
    message = to_email_message(mail, sender="KAMIYO <no-reply@k.test>", message_id="<outbox-7@k.test>")
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)

    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == "<outbox-7@k.test>" and parsed["To"] == "a@example.com"
    assert LINK in parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert LINK in parsed.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


def test_a_tier_missing_from_the_table_still_gets_its_link() -> None:
    mail = welcome_mail(recipient="a@example.com", tier="legacy", claim_link=LINK, public_url="https://k.test",
                        support_email="s@k.test", expires_at=1_900_000_000)
    assert LINK in mail.body_text and "legacy" in mail.body_text


def test_the_mail_after_a_reveal_says_when_how_to_rotate_and_where_to_get_help_and_has_no_link() -> None:
    mail = revealed_mail(recipient="a@example.com", tier="team", revealed_at=1_900_000_000,
                         public_url="https://kamiyo.test", support_email="help@kamiyo.test")

    assert "team" in mail.subject
    for body in (mail.body_text, mail.body_html):
        assert "already revealed on 2030-03-17 17:46 UTC" in body
        assert "https://kamiyo.test/api/mcp/token/rotate" in body and "help@kamiyo.test" in body
        assert "/claim" not in body and "Claude Desktop" in body
