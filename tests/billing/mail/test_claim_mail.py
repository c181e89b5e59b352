"""The welcome mail composed when it is sent: a fresh code, or no link when it no longer fits."""

from __future__ import annotations

import re

import pytest

from billing.claims import REDACTED_SESSION_PREFIX, claim_hash
from billing.config import MailConfig
from billing.delivery import ClaimRefused, Delivery
from billing.mail.claim_mail import claim_mail_composers, queue_welcome
from billing.mail.outbox_sender import OutboxSender
from billing.store import Store
from billing.subscription_state import SubscriptionState
from billing.tokens import TokenCodec
from tests.support import JWT_SECRET

NOW = 1_900_000_000
SUB = "sub_claim_mail"
SESSION = "cs_test_claimmail1"


def sender(store: Store) -> OutboxSender:
    return OutboxSender(store, MailConfig(), clock=lambda: NOW,
                        composers=claim_mail_composers(public_url="https://k.test", support_email="help@k.test"))


async def subscribe(store: Store, status: str = "active") -> int:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_cm", email="cm@example.com", name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, SubscriptionState("team", status, NOW + 86_400, False, NOW))
        await tx.create_claim(SUB, kind="checkout_session", secret_hash=claim_hash(SESSION), expires_at=NOW + 3600)
        return await queue_welcome(tx.db, subscription_id=SUB, recipient="cm@example.com", tier="team", now=NOW)


async def set_status(store: Store, status: str) -> None:
    async with store.webhook_transaction(NOW) as tx:
        current = await tx.subscription(SUB)
        assert current is not None
        await tx.write_subscription(SUB, current.user_id, SubscriptionState("team", status, NOW + 86_400, False, NOW))


def code_in(text: str) -> str:
    (code,) = re.findall(r"/claim\?code=([A-Za-z0-9_-]+)", text)
    return code


async def test_the_code_exists_only_in_the_composed_mail_and_only_its_hash_is_stored(store: Store) -> None:
    mail_id = await subscribe(store)
    (row,) = await store.list_outbox(pending_only=True)
    assert row.id == mail_id and row.body_text == "" and row.link_id

    mail = await sender(store).compose(row)

    assert mail is not None and "Welcome" in mail.subject and "until" in mail.body_text
    code = code_in(mail.body_text)
    assert code in mail.body_html
    async with store.transaction() as db:
        claim = await store.claim_for_redemption(db, claim_hash(code))
    assert claim is not None and claim.claim_id == row.link_id and claim.expires_at == NOW + 7 * 86_400


async def test_a_mail_sent_again_after_a_crash_carries_a_new_code_and_either_code_mints_once(store: Store) -> None:
    await subscribe(store)
    (row,) = await store.list_outbox(pending_only=True)
    first = code_in((await sender(store).compose(row)).body_text)  # type: ignore[union-attr]
    second = code_in((await sender(store).compose(row)).body_text)  # type: ignore[union-attr]  # the retry
    assert first != second

    delivery = Delivery(store, TokenCodec(JWT_SECRET), public_url="https://k.test", support_email="help@k.test",
                        clock=lambda: NOW)
    assert (await delivery.redeem(claim_code=second)).subscription_id == SUB
    with pytest.raises(ClaimRefused) as refused:
        await delivery.redeem(claim_code=first)
    assert refused.value.refusal.status == 410


async def test_a_mail_waits_while_the_payment_is_pending_and_goes_once_it_completed(store: Store) -> None:
    await subscribe(store, status="incomplete")
    (row,) = await store.list_outbox(pending_only=True)
    assert await sender(store).compose(row) is None
    (waiting,) = await store.list_outbox(pending_only=True)
    assert waiting.last_error and "payment" in waiting.last_error

    await set_status(store, "active")
    assert await sender(store).compose(waiting) is not None


async def test_a_mail_for_a_subscription_that_ended_is_cancelled_never_sent(store: Store) -> None:
    await subscribe(store)
    await set_status(store, "canceled")
    (row,) = await store.list_outbox(pending_only=True)

    assert await sender(store).compose(row) is None

    (cancelled,) = await store.list_outbox()
    assert cancelled.status == "cancelled" and "ended" in (cancelled.last_error or "")


async def test_the_stored_digest_form_of_a_session_id_redeems_nothing(store: Store) -> None:
    await subscribe(store)
    delivery = Delivery(store, TokenCodec(JWT_SECRET), public_url="https://k.test", support_email="help@k.test",
                        clock=lambda: NOW)
    with pytest.raises(ClaimRefused) as refused:
        await delivery.redeem(session_id=REDACTED_SESSION_PREFIX + claim_hash(SESSION))
    assert refused.value.refusal.status == 404
    assert (await delivery.redeem(session_id=SESSION)).subscription_id == SUB
