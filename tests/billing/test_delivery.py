"""Redeeming claims and re-sending them, against a real SQLite store (clock in hand)."""

from __future__ import annotations

import asyncio
import re

import pytest

from billing.authority import Authority
from billing.claims import EMAIL_CLAIM_TTL_SECONDS, SESSION_CLAIM_TTL_SECONDS, claim_hash
from billing.config import MailConfig
from billing.delivery import ClaimRefused, Delivery
from billing.errors import NotFoundError
from billing.mail.claim_mail import claim_mail_composers, queue_welcome
from billing.mail.outbox_sender import OutboxSender
from billing.store import Store
from billing.subscription_state import SubscriptionState
from billing.tokens import TokenCodec
from tests.support import JWT_SECRET

NOW = 1_900_000_000
SUB = "sub_delivery_1"
SESSION = "cs_test_delivery1"


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def delivery(store: Store, clock: Clock) -> Delivery:
    return Delivery(store, TokenCodec(JWT_SECRET), public_url="https://kamiyo.test", support_email="help@kamiyo.test",
                    clock=clock)


async def subscribe(store: Store, email: str = "buyer@example.com", status: str = "active") -> str:
    """What checkout.session.completed writes (customer, subscription, session claim, queued welcome mail),
    then the mail as the sender composes it: returns the claim code it carries."""
    async with store.webhook_transaction(NOW) as tx:
        user_id = await tx.ensure_stripe_customer("cus_delivery_1", email=email, name=None, event_created=NOW)
        await tx.write_subscription(SUB, user_id, SubscriptionState("team", status, NOW + 30 * 86_400, False, NOW))
        await tx.create_claim(SUB, kind="checkout_session", secret_hash=claim_hash(SESSION),
                              expires_at=NOW + SESSION_CLAIM_TTL_SECONDS)
        await queue_welcome(tx.db, subscription_id=SUB, recipient=email, tier="team", now=NOW)
    return await latest_code(store) if status == "active" else ""


async def latest_code(store: Store) -> str:
    """The claim code of the latest pending mail, composed now as the sender would (no SMTP needed)."""
    sender = OutboxSender(store, MailConfig(), clock=lambda: NOW,
                          composers=claim_mail_composers(public_url="https://kamiyo.test", support_email="h@k.test"))
    row = (await store.list_outbox(pending_only=True))[-1]
    mail = await sender.compose(row)
    assert mail is not None, row
    return re.findall(r"/claim\?code=([A-Za-z0-9_-]+)", mail.body_text)[0]


async def refusal(call: object) -> tuple[int, str]:
    with pytest.raises(ClaimRefused) as caught:
        await call  # type: ignore[misc]
    return caught.value.refusal.status, caught.value.refusal.code


async def test_the_minted_token_authenticates_for_the_claims_entitlement(store: Store, delivery: Delivery,
                                                                         clock: Clock) -> None:
    code = await subscribe(store)
    issued = await delivery.redeem(claim_code=code)

    authority = Authority(store, TokenCodec(JWT_SECRET), public_url="https://kamiyo.test", clock=clock)
    identity = await authority.authenticate(issued.token)
    assert identity.state.subscription_id == SUB and identity.state.tier == "team"
    assert issued.expires_at == NOW + 365 * 86_400
    entries = await store.audit_entries(SUB)
    assert entries[-1]["action"] == "claim.redeem" and issued.token not in str(entries)


async def test_an_emailed_claim_works_until_seven_days_and_not_at_seven_days(store: Store, delivery: Delivery,
                                                                          clock: Clock) -> None:
    code = await subscribe(store)
    clock.now = NOW + EMAIL_CLAIM_TTL_SECONDS
    assert await refusal(delivery.redeem(claim_code=code)) == (410, "claim_expired")
    clock.now = NOW + EMAIL_CLAIM_TTL_SECONDS - 1
    assert (await delivery.redeem(claim_code=code)).tier == "team"


async def test_the_session_claim_expires_after_a_day_while_the_emailed_one_still_works(
        store: Store, delivery: Delivery, clock: Clock) -> None:
    code = await subscribe(store)
    clock.now = NOW + SESSION_CLAIM_TTL_SECONDS
    assert await refusal(delivery.redeem(session_id=SESSION)) == (410, "claim_expired")
    await delivery.redeem(claim_code=code)
    assert await refusal(delivery.redeem(session_id=SESSION)) == (410, "claim_already_redeemed")


async def test_concurrent_redemptions_of_both_claims_mint_exactly_one_token(store: Store, delivery: Delivery) -> None:
    code = await subscribe(store)
    results = await asyncio.gather(delivery.redeem(claim_code=code), delivery.redeem(session_id=SESSION),
                                   delivery.redeem(claim_code=code), return_exceptions=True)
    minted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ClaimRefused)]
    assert len(minted) == 1 and len(refused) == 2
    assert {r.refusal.status for r in refused} == {410}
    assert len(await store.list_tokens()) == 1


async def test_a_claim_of_a_payment_not_completed_is_refused_with_the_reason(store: Store, delivery: Delivery) -> None:
    await subscribe(store, status="active")
    async with store.webhook_transaction(NOW) as tx:
        current = await tx.subscription(SUB)
        assert current is not None
        await tx.write_subscription(SUB, current.user_id, SubscriptionState("team", "incomplete", None, False, NOW))
    assert await refusal(delivery.redeem(session_id=SESSION)) == (403, "subscription_not_active")


async def test_resend_ends_the_old_claims_and_queues_a_new_link(store: Store, delivery: Delivery) -> None:
    old = await subscribe(store)

    resent = await delivery.resend("  Buyer@Example.com ")

    assert resent.subscription_id == SUB and resent.recipient == "buyer@example.com" and resent.claims_ended == 2
    mails = await store.list_outbox()
    assert [m.status for m in mails] == ["cancelled", "pending"]
    assert mails[1].subject == "Your new KAMIYO MCP claim link"
    new = await latest_code(store)
    assert new != old
    assert await refusal(delivery.redeem(claim_code=old)) == (410, "claim_expired")
    assert await refusal(delivery.redeem(session_id=SESSION)) == (410, "claim_expired")
    assert (await delivery.redeem(claim_code=new)).subscription_id == SUB
    assert (await store.audit_entries(SUB))[-2]["action"] == "claim.resend"


async def test_resend_refuses_unknown_customers_and_ended_subscriptions(store: Store, delivery: Delivery) -> None:
    with pytest.raises(NotFoundError):
        await delivery.resend("nobody@example.com")
    await subscribe(store, status="canceled")
    with pytest.raises(NotFoundError, match="ended"):
        await delivery.resend("buyer@example.com")
