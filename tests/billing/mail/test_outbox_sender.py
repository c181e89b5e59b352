"""The outbox sender against a real SMTP server (aiosmtpd on loopback): sent, retried, never lost."""

from __future__ import annotations

from billing.config import MailConfig
from billing.mail.claim_mail import claim_mail_composers, queue_welcome
from billing.mail.outbox_sender import OutboxSender, retry_delay
from billing.store import Store
from billing.subscription_state import SubscriptionState
from tests.billing.http.delivery_harness import Inbox, claim_link

NOW = 1_900_000_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


COMPOSERS = claim_mail_composers(public_url="https://kamiyo.test", support_email="help@kamiyo.test")


async def queue_welcome_mail(store: Store, email: str = "buyer@example.com") -> int:
    """What checkout.session.completed does: a Stripe subscription and its queued welcome mail."""
    sub = "sub_" + email.split("@")[0]
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_" + sub, email=email, name=None, event_created=NOW)
        await tx.write_subscription(sub, user_id, SubscriptionState("team", "active", NOW + 30 * 86_400, False, NOW))
        return await queue_welcome(tx.db, subscription_id=sub, recipient=email, tier="team", now=NOW)


def sender_for(store: Store, port: int, clock: Clock, **kwargs: float) -> OutboxSender:
    config = MailConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, email_from="K <k@kamiyo.test>")
    return OutboxSender(store, config, clock=clock, timeout=5, rand=lambda: 0.5, composers=COMPOSERS, **kwargs)


async def test_a_due_mail_is_sent_once_with_a_claim_link_made_as_it_is_sent(store: Store) -> None:
    inbox = Inbox().start()
    try:
        mail_id = await queue_welcome_mail(store)
        sender = sender_for(store, inbox.port, Clock(NOW))

        assert await sender.send_due() == 1
        message = await inbox.next()
        assert await sender.send_due() == 0
    finally:
        inbox.stop()

    assert message["Message-ID"].startswith(f"<outbox-{mail_id}@")
    assert claim_link(message).startswith("https://kamiyo.test/claim?code=")
    (row,) = await store.list_outbox()
    assert row.status == "sent" and row.attempts == 1 and row.sent_at == NOW
    assert row.body_text == row.body_html == "" and row.subject == message["Subject"]


async def test_with_smtp_down_the_mail_stays_and_is_retried_when_smtp_comes_back(store: Store) -> None:
    await queue_welcome_mail(store)
    inbox = Inbox()  # its port is free: nothing listens yet
    clock = Clock(NOW)
    sender = sender_for(store, inbox.port, clock, base_delay=60)

    assert await sender.send_due() == 0
    (row,) = await store.list_outbox(pending_only=True)
    assert row.status == "retrying" and row.attempts == 1 and row.last_error
    assert row.next_attempt_at == NOW + 60  # backoff base, jitter at its midpoint
    assert await sender.send_due() == 0  # not due again before the backoff
    assert await store.next_mail_due() == NOW + 60

    inbox.start()
    try:
        clock.now = NOW + 60
        assert await sender.send_due() == 1
        message = await inbox.next()
    finally:
        inbox.stop()
    assert message["To"] == "buyer@example.com"
    (row,) = await store.list_outbox()
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None
    assert await store.next_mail_due() is None


async def test_a_sender_that_dies_after_taking_a_mail_leaves_it_to_be_sent_again(store: Store) -> None:
    await queue_welcome_mail(store)
    (taken,) = await store.take_due_mail(NOW, retry_at=lambda attempts: NOW + 120)  # then the process dies
    inbox = Inbox().start()
    try:
        clock = Clock(NOW + 1)
        sender = sender_for(store, inbox.port, clock)
        assert await sender.send_due() == 0  # still leased to the dead sender
        clock.now = NOW + 120
        assert await sender.send_due() == 1
        await inbox.next()
    finally:
        inbox.stop()
    (row,) = await store.list_outbox()
    assert row.id == taken.id and row.status == "sent" and row.attempts == 2


def test_the_backoff_doubles_from_its_base_with_jitter_and_is_capped() -> None:
    assert [retry_delay(n, base=30, cap=600, rand=lambda: 0.5) for n in (1, 2, 3, 4, 5, 6)] == [
        30, 60, 120, 240, 480, 600]
    assert retry_delay(1, base=30, rand=lambda: 0.0) == 22.5
    assert retry_delay(1, base=30, rand=lambda: 1.0) == 37.5


async def test_without_smtp_settings_nothing_is_sent_and_the_mail_waits(store: Store) -> None:
    await queue_welcome_mail(store)
    inbox = Inbox().start()  # an SMTP server listens on the port: only the missing host keeps the mail back
    try:
        unconfigured = OutboxSender(store, MailConfig(smtp_port=inbox.port, smtp_starttls=False), clock=Clock(NOW),
                                    composers=COMPOSERS)
        async with unconfigured.running():
            assert await unconfigured.send_due() == 0
        (row,) = await store.list_outbox(pending_only=True)
        assert row.attempts == 0 and row.status == "pending" and inbox.messages == []

        configured = sender_for(store, inbox.port, Clock(NOW))
        assert await configured.send_due() == 1  # the same mail, once SMTP is configured
        assert (await inbox.next())["To"] == "buyer@example.com"
    finally:
        inbox.stop()


async def test_the_background_sender_delivers_a_queued_mail_without_being_asked(store: Store) -> None:
    inbox = Inbox().start()
    try:
        sender = sender_for(store, inbox.port, Clock(NOW), poll_seconds=0.02)
        async with sender.running():
            await queue_welcome_mail(store, "later@example.com")
            message = await inbox.next()
    finally:
        inbox.stop()
    assert message["To"] == "later@example.com"
