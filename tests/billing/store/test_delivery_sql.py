"""The store's token-delivery operations (claims, redemption, the outbox), on both backends."""

from __future__ import annotations

from billing.claims import claim_hash
from billing.mail.welcome import OutboxMail
from billing.store import AnyStore
from billing.store.records import AuditEntry, NewToken
from billing.subscription_state import SubscriptionState

NOW = 1_900_000_000
SUB = "sub_delivery_store"
MAIL = OutboxMail("welcome", "buyer@example.com", "Your KAMIYO access", "text with a link", "<p>html</p>")


async def subscribed(store: AnyStore, status: str = "active") -> str:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_d", email="buyer@example.com", name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, SubscriptionState("team", status, NOW + 86_400, False, NOW))
    return user_id


async def test_an_emailed_claim_and_its_welcome_mail_are_written_together(store: AnyStore) -> None:
    await subscribed(store)
    async with store.transaction() as db:
        first = await store.add_email_claim_and_welcome(db, subscription_id=SUB, secret_hash=claim_hash("c1"),
                                                        expires_at=NOW + 3600, mail=MAIL, now=NOW)
        second = await store.add_email_claim_and_welcome(db, subscription_id=SUB, secret_hash=claim_hash("c2"),
                                                         expires_at=NOW + 3600, mail=MAIL, now=NOW)
    assert second > first
    assert [row.id for row in await store.list_outbox(pending_only=True)] == [first, second]
    assert await store.next_mail_due() == NOW


async def test_redeeming_a_claim_ends_every_claim_of_the_entitlement_and_stores_the_token(store: AnyStore) -> None:
    user_id = await subscribed(store)
    async with store.transaction() as db:
        await store.add_email_claim_and_welcome(db, subscription_id=SUB, secret_hash=claim_hash("code"),
                                                expires_at=NOW + 3600, mail=MAIL, now=NOW)
    async with store.webhook_transaction(NOW) as tx:
        await tx.create_claim(SUB, kind="checkout_session", secret="cs_test_d", expires_at=NOW + 3600)
    async with store.transaction() as db:
        claim = await store.claim_for_redemption(db, claim_hash("code"))
        assert claim is not None and (claim.user_id, claim.email, claim.tier, claim.cancel_at_period_end) == (
            user_id, "buyer@example.com", "team", False)
        token = NewToken("tok_d", user_id, SUB, "d" * 64, NOW, NOW + 86_400)
        ended = await store.redeem_claim(db, claim, token, now=NOW, audit=AuditEntry("claim", "claim.redeem", SUB))
        assert ended == 2
        assert await store.claim_for_redemption(db, claim_hash("missing")) is None
    async with store.transaction() as db:
        again = await store.claim_for_redemption(db, claim_hash("cs_test_d"))
    assert again is not None and again.redeemed_at == NOW
    assert (await store.token_state("d" * 64)) is not None


async def test_a_resend_targets_the_latest_subscription_and_ends_open_claims_and_mails(store: AnyStore) -> None:
    await subscribed(store)
    async with store.transaction() as db:
        await store.add_email_claim_and_welcome(db, subscription_id=SUB, secret_hash=claim_hash("old"),
                                                expires_at=NOW + 3600, mail=MAIL, now=NOW)
    async with store.transaction() as db:
        target = await store.resend_target(db, "buyer@example.com")
        assert target is not None and (target.subscription_id, target.tier, target.cancel_at_period_end) == (
            SUB, "team", False)
        assert await store.resend_target(db, "nobody@example.com") is None
        assert await store.end_open_claims(db, SUB, now=NOW + 1) == 1
        await store.audit_in(db, AuditEntry("operator", "claim.resend", SUB), now=NOW + 1)
    assert await store.list_outbox(pending_only=True) == []
    assert (await store.list_outbox())[0].status == "cancelled"
    assert await store.next_mail_due() is None


async def test_taking_due_mail_leases_it_until_its_retry_time(store: AnyStore) -> None:
    await subscribed(store)
    async with store.transaction() as db:
        mail_id = await store.add_email_claim_and_welcome(db, subscription_id=SUB, secret_hash=claim_hash("m"),
                                                          expires_at=NOW + 3600, mail=MAIL, now=NOW)
    taken = await store.take_due_mail(NOW, retry_at=lambda attempts: NOW + 60 * attempts)
    assert [(m.id, m.attempts, m.next_attempt_at) for m in taken] == [(mail_id, 1, NOW + 60)]
    assert await store.take_due_mail(NOW + 59, retry_at=lambda attempts: NOW) == []
    await store.mark_mail_failed(mail_id, "smtp down")
    assert (await store.list_outbox())[0].status == "retrying"
    await store.mark_mail_sent(mail_id, now=NOW + 61)
    sent = (await store.list_outbox())[0]
    assert (sent.status, sent.last_error, sent.body_html) == ("sent", None, "")
    assert sent.body_text != MAIL.body_text
