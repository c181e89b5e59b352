"""The outbox sender against a real SMTP server (aiosmtpd on loopback): sent, retried, never lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from billing.authority import Authority
from billing.config import MailConfig
from billing.delivery import add_email_claim_and_welcome
from billing.mail.outbox_sender import OutboxSender, retry_delay
from billing.store import SQLiteStore, Store
from billing.store.delivery_sql import SENT_BODY
from billing.tokens import TokenCodec
from tests.billing.http.delivery_harness import Inbox, claim_link
from tests.support import JWT_SECRET

NOW = 1_900_000_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await SQLiteStore.open(tmp_path / "kamiyo.db")
    try:
        yield opened
    finally:
        await opened.close()


async def queue_welcome(store: Store, email: str = "buyer@example.com") -> int:
    authority = Authority(store, TokenCodec(JWT_SECRET), public_url="https://kamiyo.test", clock=lambda: NOW)
    grant = await authority.issue_grant(email, "team")
    async with store.transaction() as db:
        return await add_email_claim_and_welcome(db, subscription_id=grant.subscription_id, email=email, tier="team",
                                                 public_url="https://kamiyo.test", support_email="help@kamiyo.test",
                                                 now=NOW)


def sender_for(store: Store, port: int, clock: Clock, **kwargs: float) -> OutboxSender:
    config = MailConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, email_from="K <k@kamiyo.test>")
    return OutboxSender(store, config, clock=clock, timeout=5, rand=lambda: 0.5, **kwargs)


async def test_a_due_mail_is_sent_once_and_its_claim_link_is_not_kept(store: Store) -> None:
    inbox = Inbox().start()
    try:
        mail_id = await queue_welcome(store)
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
    assert row.body_text == SENT_BODY and row.body_html == ""


async def test_with_smtp_down_the_mail_stays_and_is_retried_when_smtp_comes_back(store: Store) -> None:
    await queue_welcome(store)
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
    await queue_welcome(store)
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
    await queue_welcome(store)
    sender = OutboxSender(store, MailConfig(), poll_seconds=0.01)
    async with sender.running():
        pass
    (row,) = await store.list_outbox(pending_only=True)
    assert row.attempts == 0 and row.status == "pending" and "/claim?code=" in row.body_text


async def test_the_background_sender_delivers_a_queued_mail_without_being_asked(store: Store) -> None:
    inbox = Inbox().start()
    try:
        sender = sender_for(store, inbox.port, Clock(NOW), poll_seconds=0.02)
        async with sender.running():
            await queue_welcome(store, "later@example.com")
            message = await inbox.next()
    finally:
        inbox.stop()
    assert message["To"] == "later@example.com"
