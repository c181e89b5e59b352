"""Upgrade in the chat, against a real server process and the official MCP client: a tier refusal's
one-time link upgrades this very subscription (the fake Stripe's portal flow and a signed
`customer.subscription.updated`), and the retried call runs at the new tier; clients that take URL
elicitation get the link as one (2025-11-25: elicitation/create + notifications/elicitation/complete;
2026-07-28: the input-required round trip); an operator grant's link buys a new subscription through
Checkout, its client is told when it is paid, and the new token runs the call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.fakes.stripe_fake import FakeStripe
from tests.kamiyo_mcp.overage_live import PERSONAL_SUBSCRIPTION, WALLET, Shop, fake, open_shop, upgrade_link
from tests.support import ServerProcess
from tests.support_mcp import mcp_session, text_of

__all__ = ["fake"]  # the fixture, used by name


async def test_a_personal_user_follows_the_refusals_link_and_the_retried_call_runs(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory, intel=True)
    token = await shop.subscribe(PERSONAL_SUBSCRIPTION, "personal")
    async with mcp_session(shop.server.url, token) as client:
        refused = await client.call_tool("monitor_wallet", {"address": WALLET})
        assert refused.is_error and "needs the team tier" in text_of(refused)
        link = upgrade_link(text_of(refused))
        assert token not in text_of(refused)
        await shop.follow(link)
        retried = await client.call_tool("monitor_wallet", {"address": WALLET})
        status = await client.call_tool("get_account_status", {})
    assert not retried.is_error, text_of(retried)
    assert status.structured_content is not None and status.structured_content["tier"] == "team"
    assert shop.rows("SELECT COUNT(*) FROM upgrade_links WHERE completed_at IS NOT NULL") == [(1,)]


class ElicitingClient:
    """The SDK client's elicitation callback as a person in a client that supports URL elicitation:
    shown the link, they open it, confirm in Stripe, and accept."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.asked: list[types.ElicitRequestURLParams] = []
        self.completed: list[str] = []
        self.completion = anyio.Event()

    async def elicit(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        self.asked.append(params)
        await self.shop.follow(params.url)
        return types.ElicitResult(action="accept")

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ElicitCompleteNotification):
            self.completed.append(message.params.elicitation_id)
            self.completion.set()


async def call_wallet(shop: Shop, token: str, mode: str, person: ElicitingClient | None = None,
                      decline: bool = False) -> types.CallToolResult:
    """One `monitor_wallet` call from an SDK client speaking `mode`, with the person's elicitation callback."""

    async def declined(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    callback = declined if decline else person.elicit if person else None
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        transport = streamable_http_client(shop.server.url + "/mcp", http_client=http)
        async with Client(transport, mode=mode, elicitation_callback=callback,
                          message_handler=person.on_message if person else None) as client:
            result = await client.call_tool("monitor_wallet", {"address": WALLET})
            if person is not None and mode == "legacy":
                with anyio.fail_after(15):
                    await person.completion.wait()
            return result


async def test_a_url_elicitation_client_is_asked_to_upgrade_and_told_when_it_is_done(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory, intel=True)
    token = await shop.subscribe(PERSONAL_SUBSCRIPTION, "personal")
    person = ElicitingClient(shop)
    result = await call_wallet(shop, token, "legacy", person)
    (asked,) = person.asked
    assert asked.mode == "url" and "/billing/upgrade?code=" in asked.url and "team" in asked.message
    assert person.completed == [asked.elicitation_id]
    assert not result.is_error, text_of(result)  # the upgrade landed while the call waited: it ran


async def test_a_2026_client_gets_the_input_required_round_trip_and_the_retry_runs(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory, intel=True)
    token = await shop.subscribe(PERSONAL_SUBSCRIPTION, "personal")
    person = ElicitingClient(shop)
    result = await call_wallet(shop, token, "2026-07-28", person)
    (asked,) = person.asked
    assert asked.mode == "url" and "/billing/upgrade?code=" in asked.url
    assert not result.is_error, text_of(result)


async def test_a_client_without_url_elicitation_gets_the_link_in_the_text_and_a_declined_one_too(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory, intel=True)
    token = await shop.subscribe(PERSONAL_SUBSCRIPTION, "personal")
    declined = await call_wallet(shop, token, "legacy", decline=True)
    assert declined.is_error and upgrade_link(text_of(declined))
    plain = await call_wallet(shop, token, "legacy")  # no elicitation capability declared
    assert plain.is_error and upgrade_link(text_of(plain))


class BuyingClient(ElicitingClient):
    """A person with an operator grant: shown the link, they buy the tier in Stripe Checkout and accept."""

    def __init__(self, shop: Shop) -> None:
        super().__init__(shop)
        self.sessions: list[str] = []

    async def elicit(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        self.asked.append(params)
        self.sessions.append(await self.shop.buy(params.url))
        return types.ElicitResult(action="accept")


async def grant_token(shop: Shop, email: str = "friend@example.com") -> str:
    async with Runtime(load_settings(shop.env)).opened() as runtime:
        return (await runtime.authority.issue_grant(email, "personal")).token


async def claim(shop: Shop, session_id: str) -> str:
    """The token of a paid Checkout, as its success page picks it up."""
    async with httpx.AsyncClient(base_url=shop.server.url) as http:
        claimed = await http.post("/api/mcp/token/claim", json={"session_id": session_id})
    assert claimed.status_code == 200, claimed.text
    return str(claimed.json()["token"])


async def test_an_operator_grant_is_sent_to_checkout_told_when_it_is_paid_and_the_new_token_runs_the_call(
        tmp_path: Path, fake: FakeStripe, server_factory: type[ServerProcess]) -> None:
    shop = open_shop(tmp_path, fake, server_factory, intel=True)
    token = await grant_token(shop)
    async with mcp_session(shop.server.url, token) as client:  # no elicitation: the link in the text
        refused = await client.call_tool("monitor_wallet", {"address": WALLET})
    text = text_of(refused)
    assert refused.is_error and "Subscribe to the team tier" in text and "new token" in text
    assert "Upgrade to team in two clicks" not in text  # this token is not upgraded by the purchase

    person = BuyingClient(shop)
    result = await call_wallet(shop, token, "legacy", person)
    (asked,) = person.asked
    assert asked.mode == "url" and "subscribe to the team tier" in asked.message
    assert person.completed == [asked.elicitation_id]  # told once the purchase's webhook landed
    assert result.is_error and "new token" in text_of(result)  # the grant's token itself stays personal

    modern = BuyingClient(shop)  # another grant's 2026-07-28 client: the input-required round trip, then its retry
    retried = await call_wallet(shop, await grant_token(shop, "friend2@example.com"), "2026-07-28", modern)
    assert len(modern.asked) == 1 and retried.is_error
    assert "Your new subscription is active" in text_of(retried) and "/billing/upgrade?code=" not in text_of(retried)

    again = await call_wallet(shop, token, "legacy")  # the old grant token once more
    assert again.is_error and "You already have a team subscription" in text_of(again)
    assert "/billing/upgrade?code=" not in text_of(again)  # no second purchase offered

    new_token = await claim(shop, person.sessions[0])
    async with mcp_session(shop.server.url, new_token) as client:
        bought = await client.call_tool("monitor_wallet", {"address": WALLET})
    assert not bought.is_error, text_of(bought)
    assert shop.rows("SELECT COUNT(*) FROM upgrade_links WHERE completed_at IS NOT NULL") == [(2,)]
