"""The sign-in mail composed when it is sent: the link's secret exists only in the mail, 15 minutes from then."""

from __future__ import annotations

import re

from pydantic import AnyUrl

from billing.config import MailConfig
from billing.mail.compose import Composers
from billing.mail.outbox_sender import OutboxSender
from billing.mail.sign_in import KIND_SIGN_IN, sign_in_composer
from billing.oauth.clients import KamiyoClient
from billing.oauth.secret import secret_hash
from billing.oauth.sign_in import create_sign_in_link
from billing.store import Store
from billing.store.oauth_records import PendingRequest

NOW = 1_900_000_000
CLIENT = KamiyoClient(client_id="c-1", client_name="Claude", redirect_uris=[AnyUrl("https://claude.ai/cb")])


def sender(store: Store, now: int = NOW) -> OutboxSender:
    composers = Composers({KIND_SIGN_IN: sign_in_composer(public_url="https://k.test", support_email="help@k.test",
                                                          ttl=900)})
    return OutboxSender(store, MailConfig(), clock=lambda: now, composers=composers)


async def queue(store: Store, request_id: str = "kar_" + "r" * 43, *, expires_at: int = NOW + 3600) -> PendingRequest:
    request = PendingRequest(request_id, "c-1", "https://claude.ai/cb", True, "x" * 43, "st", "mcp",
                             "https://k.test/mcp", NOW, expires_at)
    await store.create_oauth_request(request)
    async with store.transaction() as db:
        await create_sign_in_link(store, db, request=request, email="me@example.com", client=CLIENT, now=NOW)
    return request


def link_in(text: str) -> str:
    (code,) = re.findall(r"/oauth/link\?code=([A-Za-z0-9_-]+)", text)
    return code


async def test_the_link_is_made_when_the_mail_is_sent_and_only_its_hash_is_kept(store: Store) -> None:
    await queue(store)
    (row,) = await store.list_outbox(pending_only=True)
    assert row.body_text == "" and row.link_id and "Claude" in row.params

    mail = await sender(store, NOW + 60).compose(row)

    assert mail is not None and mail.subject == "Your KAMIYO sign-in link"
    code = link_in(mail.body_text)
    assert code in mail.body_html and "\u201cClaude\u201d (returning to claude.ai)" in mail.body_text
    link = await store.sign_in_link(secret_hash(code))
    assert link is not None and link.link_id == row.link_id and link.expires_at == NOW + 60 + 900


async def test_a_mail_sent_again_carries_a_new_link_and_either_works(store: Store) -> None:
    await queue(store)
    (row,) = await store.list_outbox(pending_only=True)
    first = link_in((await sender(store).compose(row)).body_text)  # type: ignore[union-attr]
    second = link_in((await sender(store).compose(row)).body_text)  # type: ignore[union-attr]  # the retry
    assert first != second
    assert await store.sign_in_link(secret_hash(first)) is not None
    assert await store.sign_in_link(secret_hash(second)) is not None


async def test_a_link_never_outlives_its_sign_in_and_a_finished_one_is_not_mailed(store: Store) -> None:
    request = await queue(store, expires_at=NOW + 300)
    (row,) = await store.list_outbox(pending_only=True)
    mail = await sender(store).compose(row)
    assert mail is not None
    link = await store.sign_in_link(secret_hash(link_in(mail.body_text)))
    assert link is not None and link.expires_at == NOW + 300  # the request ends first

    async with store.transaction() as db:
        await store.complete_request(db, request.request_id, now=NOW + 1)
    other = await queue(store, "kar_" + "s" * 43)
    async with store.transaction() as db:
        await store.complete_request(db, other.request_id, now=NOW + 1)
    (later,) = [r for r in await store.list_outbox(pending_only=True) if r.id != row.id]
    assert await sender(store, NOW + 2).compose(later) is None
    (cancelled,) = [r for r in await store.list_outbox() if r.status == "cancelled"]
    assert cancelled.id == later.id and "finished or expired" in (cancelled.last_error or "")
