"""Token delivery end to end: pay, get the welcome email over real SMTP, redeem, use, rotate."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from billing.claude_config import MCP_REMOTE
from billing.tokens import token_hash
from tests.billing.http.app_harness import assert_error_shape
from tests.billing.http.delivery_harness import Inbox, Shop, claim_link, running_shop
from tests.fakes.stripe_fake import FakeStripe
from tests.support_mcp import mcp_session, start_of_a_fresh_minute_window, text_of


@pytest.fixture
async def shop(tmp_path: Path, fake: FakeStripe, inbox: Inbox) -> AsyncIterator[Shop]:
    async with running_shop(tmp_path, fake, smtp_port=inbox.port) as running:
        yield running


def code_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["code"][0]


async def all_mail_sent(shop: Shop) -> None:
    """Wait (bounded) for the sender to mark what the SMTP server received as sent: it marks after sending."""
    with anyio.fail_after(10):
        while await shop.runtime.store.list_outbox(pending_only=True):
            await asyncio.sleep(0.01)  # polling the outbox, bounded by fail_after


def rows(shop: Shop, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(shop.settings.database_path) as conn:
        return conn.execute(sql, params).fetchall()


async def test_the_welcome_email_link_mints_a_token_that_works_with_the_mcp_client(shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("Buyer@Example.com", "team")

    message = await inbox.next()
    assert message["To"] == "buyer@example.com"
    assert message["From"] == "KAMIYO <no-reply@kamiyo.test>"
    assert "team" in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "help@kamiyo.test" in text and "Claude Desktop" in text and "$99/month" in text
    link = claim_link(message)
    assert link.startswith(shop.url + "/claim?code=")

    answer = await shop.claim(claim_code=code_of(link))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["tier"] == "team" and datetime.fromisoformat(body["expires_at"]).tzinfo is not None
    token = body["token"]
    servers = body["claude_desktop_config"]["mcpServers"]
    assert servers == {"kamiyo": {
        "command": "npx", "args": ["-y", MCP_REMOTE, shop.url + "/mcp", "--header", "Authorization:${AUTH_HEADER}",
                                   "--transport", "http-only"],
        "env": {"AUTH_HEADER": f"Bearer {token}"}}}

    async with mcp_session(shop.url, token) as client:
        status = await client.call_tool("get_account_status", {})
    assert not status.is_error, text_of(status)
    assert status.structured_content["tier"] == "team"
    assert status.structured_content["subscription"]["access"] is True

    await all_mail_sent(shop)
    sent = rows(shop, "SELECT sent_at, body_text FROM outbox")
    assert len(sent) == 1 and sent[0][0] is not None and code_of(link) not in str(sent[0][1])
    assert rows(shop, "SELECT COUNT(*) FROM tokens WHERE subscription_id = ?", (paid.subscription_id,)) == [(1,)]


async def test_no_table_holds_the_token_or_the_claim_secrets(shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("quiet@example.com")
    code = code_of(claim_link(await inbox.next()))
    token = (await shop.claim(claim_code=code)).json()["token"]
    await all_mail_sent(shop)

    with sqlite3.connect(shop.settings.database_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump and code not in dump
    assert token_hash(token) in dump
    assert rows(shop, "SELECT COUNT(*) FROM claims WHERE subscription_id = ? AND redeemed_at IS NOT NULL",
                (paid.subscription_id,)) == [(2,)]


async def test_redeeming_either_claim_ends_both_and_a_second_redemption_is_410(shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("twice@example.com")
    code = code_of(claim_link(await inbox.next()))

    first = await shop.claim(session_id=paid.session_id)
    assert first.status_code == 200, first.text

    for again in (await shop.claim(session_id=paid.session_id), await shop.claim(claim_code=code)):
        body = assert_error_shape(again, 410, "claim_already_redeemed")
        assert "rotate" in body["error"]["message"] and "help@kamiyo.test" in body["error"]["message"]
        assert "token" not in body
    assert rows(shop, "SELECT COUNT(*) FROM tokens") == [(1,)]


async def test_wrong_codes_and_unknown_sessions_get_one_answer_that_reveals_nothing(shop: Shop, inbox: Inbox) -> None:
    await shop.pay("someone@example.com")
    await inbox.next()
    unknown = [
        await shop.claim(claim_code="A" * 43),
        await shop.claim(claim_code="short"),
        await shop.claim(session_id="cs_test_" + "b" * 58),
        await shop.claim(session_id="not-a-session"),
    ]
    bodies = [assert_error_shape(answer, 404, "claim_not_found") for answer in unknown]
    assert all(body == bodies[0] for body in bodies)

    assert_error_shape(await shop.claim(), 400, "invalid_claim_request")
    assert_error_shape(await shop.client.post("/api/mcp/token/claim", json={"session_id": "cs_x", "claim_code": "y"}),
                       400, "invalid_claim_request")
    assert_error_shape(await shop.client.get("/api/mcp/token/claim"), 405)


async def test_a_claim_for_an_ended_subscription_is_refused_with_the_reason(shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("gone@example.com")
    code = code_of(claim_link(await inbox.next()))

    await shop.end_subscription(paid)
    answer = await shop.claim(claim_code=code)

    body = assert_error_shape(answer, 403, "subscription_not_active")
    assert "canceled" in body["error"]["message"] and "/pricing" in body["error"]["message"]


async def test_claims_are_rate_limited_per_address(shop: Shop) -> None:
    await start_of_a_fresh_minute_window()  # the limiter counts per minute: keep the 21 claims in one
    answers = [await shop.claim(claim_code="C" * 43) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [404] * 20
    body = assert_error_shape(answers[20], 429, "rate_limited")
    assert "retry" in body["error"]["message"] and int(answers[20].headers["retry-after"]) > 0


async def test_rotation_returns_a_new_token_and_refuses_the_old_one_from_the_next_call(shop: Shop,
                                                                                     inbox: Inbox) -> None:
    paid = await shop.pay("rotor@example.com")
    await inbox.next()
    old = (await shop.claim(session_id=paid.session_id)).json()["token"]

    answer = await shop.client.post("/api/mcp/token/rotate", headers={"Authorization": f"Bearer {old}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    new = answer.json()["token"]
    assert new != old
    assert answer.json()["claude_desktop_config"]["mcpServers"]["kamiyo"]["env"]["AUTH_HEADER"] == f"Bearer {new}"

    async with mcp_session(shop.url, new) as client:
        assert not (await client.call_tool("get_account_status", {})).is_error
    again = await shop.client.post("/api/mcp/token/rotate", headers={"Authorization": f"Bearer {old}"})
    assert_error_shape(again, 401, "invalid_token")
    validated = await shop.client.post("/api/mcp/validate", headers={"Authorization": f"Bearer {old}"})
    assert validated.status_code == 401
    assert_error_shape(await shop.client.post("/api/mcp/token/rotate"), 401, "invalid_token")


async def test_rotation_is_refused_once_the_subscription_has_ended(shop: Shop, inbox: Inbox) -> None:
    paid = await shop.pay("ended-rotor@example.com")
    await inbox.next()
    token = (await shop.claim(session_id=paid.session_id)).json()["token"]
    await shop.end_subscription(paid)

    answer = await shop.client.post("/api/mcp/token/rotate", headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code in (401, 403)
    assert_error_shape(answer, answer.status_code)


async def test_a_welcome_mail_sent_after_the_success_page_reveal_says_so_and_carries_no_dead_link(
        tmp_path: Path, fake: FakeStripe, inbox: Inbox) -> None:
    async with running_shop(tmp_path, fake, smtp_port=None) as first:  # no SMTP yet: the mail waits
        paid = await first.pay("early@example.com", "team")
        revealed = await first.claim(session_id=paid.session_id)
        assert revealed.status_code == 200, revealed.text

    async with running_shop(tmp_path, fake, smtp_port=inbox.port) as later:  # SMTP configured: it goes out
        message = await inbox.next()
        await all_mail_sent(later)
        open_claims = rows(later, "SELECT COUNT(*) FROM claims WHERE subscription_id = ? AND redeemed_at IS NULL",
                           (paid.subscription_id,))

    assert message["To"] == "early@example.com" and "team" in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert "/claim?code=" not in body
        assert "already revealed" in body and "/api/mcp/token/rotate" in body and "help@kamiyo.test" in body
    assert open_claims == [(0,)]  # nothing was minted for a mail that carries no link


async def test_rotation_keeps_the_original_expiry_and_every_token_answer_gives_iso_8601_dates(shop: Shop) -> None:
    granted = await shop.runtime.authority.issue_grant("short@example.com", "team", days=1)
    expiry = datetime.fromtimestamp(granted.expires_at, UTC)

    answer = await shop.client.post("/api/mcp/token/rotate", headers={"Authorization": f"Bearer {granted.token}"})

    assert answer.status_code == 200, answer.text
    assert datetime.fromisoformat(answer.json()["expires_at"]) == expiry
    new = answer.json()["token"]
    validated = await shop.client.post("/api/mcp/validate", headers={"Authorization": f"Bearer {new}"})
    assert datetime.fromisoformat(validated.json()["expires_at"]) == expiry
    (row,) = [r for r in await shop.runtime.store.list_tokens() if r.token_id == answer.json()["token_id"]]
    assert row.expires_at == granted.expires_at
