"""The store's token-delivery operations (claims, redemption, the outbox), on both backends."""

from __future__ import annotations

from billing.claims import claim_hash
from billing.store import AnyStore
from billing.store.delivery_sql import reserve_email_claim
from billing.store.outbox_sql import queue_mail
from billing.store.records import AuditEntry, NewToken
from billing.subscription_state import SubscriptionState

NOW = 1_900_000_000
SUB = "sub_delivery_store"


async def subscribed(store: AnyStore, status: str = "active") -> str:
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_d", email="buyer@example.com", name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, SubscriptionState("team", status, NOW + 86_400, False, NOW))
    return user_id


async def queue_reserved(store: AnyStore, *, now: int = NOW) -> tuple[str, int]:
    """A reserved emailed claim and the mail that will carry it, in one transaction."""
    async with store.transaction() as db:
        claim_id = await reserve_email_claim(db, SUB, expires_at=now + 3600, now=now)
        mail_id = await queue_mail(db, kind="welcome", recipient="buyer@example.com", subject="Welcome",
                                   subscription_id=SUB, link_id=claim_id, params='{"resent": false}', now=now)
    return claim_id, mail_id


async def test_a_queued_mail_holds_its_link_row_and_params_but_no_body(store: AnyStore) -> None:
    await subscribed(store)
    first_claim, first = await queue_reserved(store)
    _, second = await queue_reserved(store)

    assert second > first
    rows = await store.list_outbox(pending_only=True)
    assert [row.id for row in rows] == [first, second]
    assert (rows[0].link_id, rows[0].params, rows[0].body_text, rows[0].body_html) == (
        first_claim, '{"resent": false}', "", "")
    assert await store.next_mail_due() == NOW
    async with store.transaction() as db:
        reserved = await store.reserved_email_claim(db, first_claim)
    assert reserved is not None and reserved.secret_hash is None and reserved.redeemed_at is None
    assert (reserved.tier, reserved.status, reserved.subscription_id) == ("team", "active", SUB)


async def test_sealing_a_reserved_claim_makes_its_code_redeemable_and_a_second_seal_adds_a_sibling(
        store: AnyStore) -> None:
    await subscribed(store)
    claim_id, _ = await queue_reserved(store)
    async with store.transaction() as db:
        reserved = await store.reserved_email_claim(db, claim_id)
        assert reserved is not None
        await store.seal_email_claim(db, reserved, claim_hash("first"), expires_at=NOW + 100, now=NOW)
        await store.seal_email_claim(db, reserved, claim_hash("second"), expires_at=NOW + 200, now=NOW)
        first = await store.claim_for_redemption(db, claim_hash("first"))
        second = await store.claim_for_redemption(db, claim_hash("second"))
    assert first is not None and first.claim_id == claim_id and first.expires_at == NOW + 100
    assert second is not None and second.claim_id != claim_id and second.expires_at == NOW + 200


async def test_redeeming_a_claim_ends_every_claim_of_the_entitlement_and_stores_the_token(store: AnyStore) -> None:
    user_id = await subscribed(store)
    claim_id, _ = await queue_reserved(store)
    async with store.webhook_transaction(NOW) as tx:
        await tx.create_claim(SUB, kind="checkout_session", secret_hash=claim_hash("cs_test_d"), expires_at=NOW + 3600)
    async with store.transaction() as db:
        claim = await store.claim_for_redemption(db, claim_hash("cs_test_d"))
        assert claim is not None and (claim.user_id, claim.email, claim.tier, claim.cancel_at_period_end) == (
            user_id, "buyer@example.com", "team", False)
        token = NewToken("tok_d", user_id, SUB, "d" * 64, NOW, NOW + 86_400)
        ended = await store.redeem_claim(db, claim, token, now=NOW, audit=AuditEntry("claim", "claim.redeem", SUB))
        assert ended == 2
        assert await store.claim_for_redemption(db, claim_hash("missing")) is None
        reserved = await store.reserved_email_claim(db, claim_id)
    assert reserved is not None and reserved.redeemed_at == NOW  # its mail will say the token was revealed
    assert (await store.token_state("d" * 64)) is not None


async def test_a_resend_targets_the_latest_subscription_and_ends_open_claims_and_mails(store: AnyStore) -> None:
    await subscribed(store)
    await queue_reserved(store)
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


async def test_taking_due_mail_leases_it_and_sent_or_cancelled_mail_is_never_taken_again(store: AnyStore) -> None:
    await subscribed(store)
    _, mail_id = await queue_reserved(store)
    _, other = await queue_reserved(store)
    taken = await store.take_due_mail(NOW, retry_at=lambda attempts: NOW + 60 * attempts)
    assert [(m.id, m.attempts, m.next_attempt_at) for m in taken] == [(mail_id, 1, NOW + 60), (other, 1, NOW + 60)]
    assert await store.take_due_mail(NOW + 59, retry_at=lambda attempts: NOW) == []
    (forced,) = await store.take_due_mail(NOW + 59, retry_at=lambda attempts: NOW + 999, mail_id=other)
    assert (forced.id, forced.attempts) == (other, 2)

    await store.mark_mail_failed(mail_id, "smtp down")
    assert (await store.get_mail(mail_id)).status == "retrying"  # type: ignore[union-attr]
    await store.mark_mail_sent(mail_id, now=NOW + 61, subject="Welcome to KAMIYO MCP (team)")
    await store.cancel_mail(other, "the subscription has ended", now=NOW + 61)
    sent, cancelled = await store.list_outbox()
    assert (sent.status, sent.last_error, sent.subject) == ("sent", None, "Welcome to KAMIYO MCP (team)")
    assert (cancelled.status, cancelled.last_error) == ("cancelled", "the subscription has ended")
    assert await store.take_due_mail(NOW + 10_000, retry_at=lambda attempts: NOW) == []
    async with store.transaction() as db:
        assert not await store.mail_is_pending(db, mail_id) and not await store.mail_is_pending(db, other)
