"""monitor_wallet: address validation, incident-address screening, and the on-chain provider
against a real local HTTP server speaking the Etherscan ``txlist`` API."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from kamiyo_mcp.intel.chain_provider import ChainProvider
from kamiyo_mcp.intel.errors import ChainProviderError, IntelInputError, NoIncidentDataError
from kamiyo_mcp.intel.queries import screen_wallet
from kamiyo_mcp.intel.store import IntelStore

from .conftest import LocalServer, json_body

NOW = datetime(2026, 6, 15, tzinfo=UTC)
C0FFEE = "0xc0ffeebabe5d496b2dde509f9fa189c25cf29671"
EULER_VICTIM_FREE = "0x" + "12" * 20
FLASHSTAKE_VICTIM = "0xc9fc5a6007c9801ebae1813d4d03208c4e85be44"
SECRET = "sk-test-key-never-logged"


async def _screen(
    store: IntelStore,
    address: str,
    chain: str = "ethereum",
    provider: ChainProvider | None = None,
    lookback_days: int = 90,
) -> dict:
    answer = await screen_wallet(store, provider, address=address, chain=chain, lookback_days=lookback_days, now=NOW)
    return answer.wire()


async def test_a_known_whitehat_is_labelled_from_its_sources_not_called_an_exploiter(store: IntelStore) -> None:
    result = await _screen(store, C0FFEE.upper().replace("0X", "0x"))
    assert result["linked"] is True
    # 13 address rows (README fact), some of them two sources' reports of one incident.
    assert sum(len(link["reported_by"]) for link in result["incident_links"]) == 13
    assert result["incident_link_count"] == len(result["incident_links"]) < 13
    assert all(link["statement"].startswith("linked to incident ") for link in result["incident_links"])
    assert "malicious" not in json.dumps(result["incident_links"]).lower()
    entity = result["known_entity"]
    assert (entity["name"], entity["kind"]) == ("c0ffeebabe.eth", "whitehat_mev")
    assert any("DeFiHackLabs" in s["title"] and "(whitehat)" in s["says"] for s in entity["sources"])
    assert result["verdict"].startswith("Known whitehat MEV operator (c0ffeebabe.eth)")
    assert "Not an exploiter" in result["verdict"]


async def test_an_unlabelled_attacker_gets_a_plain_warning_with_its_incidents(store: IntelStore) -> None:
    result = await _screen(store, "0xb3764761e297d6f121e79c32a65829cd1ddb4d32")
    assert "known_entity" not in result
    assert result["verdict"].startswith("Named as the sender of the attack transaction of 1 incident")


async def test_the_parity_attacker_is_linked_to_the_parity_incident(store: IntelStore) -> None:
    result = await _screen(store, "0xb3764761e297d6f121e79c32a65829cd1ddb4d32")
    links = {(link["incident_id"], link["role"]) for link in result["incident_links"]}
    assert ("defihacklabs:2017-07-19:parity-multisig", "attacker") in links


async def test_without_a_provider_the_result_says_what_was_not_checked(store: IntelStore) -> None:
    result = await _screen(store, EULER_VICTIM_FREE)
    assert result["linked"] is False and "incident_links" not in result
    assert "onchain" not in result and "absence of evidence" in result["verdict"]
    assert "no chain provider is configured" in result["not_checked"][0]
    assert "KAMIYO_CHAIN_API_URL" in result["not_checked"][0]


@pytest.mark.parametrize(
    ("address", "chain", "message"),
    [
        ("0x123", "ethereum", "expected 40 hex digits after 0x, got 3"),
        ("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "ethereum", "fails the EIP-55 checksum"),
        ("hello", "bsc", "not a valid BSC address"),
        ("0x" + "ab" * 20, "solana", "characters not in base58"),
        ("0x" + "ab" * 20, "bitcoin", "not supported for wallet monitoring"),
        ("0x" + "ab" * 20, "narnia", "not supported for wallet monitoring"),
        ("", "ethereum", "address: expected a wallet address"),
    ],
)
async def test_bad_addresses_and_chains_get_precise_errors(
    store: IntelStore, address: str, chain: str, message: str
) -> None:
    with pytest.raises(IntelInputError, match=message):
        await _screen(store, address, chain)


@pytest.mark.parametrize("days", [0, -1, 10**6, True])
async def test_bad_lookbacks_are_refused(store: IntelStore, days: int) -> None:
    with pytest.raises(IntelInputError, match="lookback_days"):
        await _screen(store, C0FFEE, lookback_days=days)


async def test_a_solana_address_is_screened_and_onchain_is_stated_unsupported(store: IntelStore) -> None:
    provider = ChainProvider("http://127.0.0.1:9", None)
    result = await _screen(store, "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "solana", provider)
    assert result["chain"] == "Solana" and "onchain" not in result
    assert "not Solana" in result["not_checked"][0]


def _txlist(address: str) -> list[dict]:
    day = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
    old = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    return [
        {"hash": "0xaa", "timeStamp": str(day), "from": address, "to": FLASHSTAKE_VICTIM, "value": "0", "isError": "0"},
        {"hash": "0xbb", "timeStamp": str(day), "from": address, "to": "0x" + "99" * 20, "value": "1", "isError": "0"},
        {"hash": "0xcc", "timeStamp": str(old), "from": address, "to": FLASHSTAKE_VICTIM, "value": "0", "isError": "0"},
    ]


async def test_with_a_provider_recent_transactions_with_exploited_contracts_are_listed(
    store: IntelStore, local_server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server: LocalServer = local_server(
        lambda path, q: json_body({"status": "1", "message": "OK", "result": _txlist(q["address"][0])})
    )
    provider = ChainProvider(server.url + "/api", SECRET)
    result = await _screen(store, EULER_VICTIM_FREE, provider=provider)
    hits = result["onchain"]["exploited_contract_interactions"]
    assert [(h["tx_hash"], h["counterparty_role"]) for h in hits] == [("0xaa", "victim_contract")]
    assert hits[0]["incident_id"] == "defihacklabs:2026-08-20:flashstakev2"
    assert result["onchain"]["transactions_in_lookback"] == 2
    assert "action=txlist" in server.seen[0] and "sort=desc" in server.seen[0] and "chainid=1" in server.seen[0]
    assert SECRET not in caplog.text and SECRET not in json.dumps(result) and SECRET not in repr(provider)


async def test_an_address_without_transactions_is_an_empty_answer(store: IntelStore, local_server) -> None:
    server: LocalServer = local_server(
        lambda path, q: json_body({"status": "0", "message": "No transactions found", "result": []})
    )
    result = await _screen(store, EULER_VICTIM_FREE, provider=ChainProvider(server.url, None))
    assert result["onchain"]["checked"] is True and "exploited_contract_interactions" not in result["onchain"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((500, "text/plain", b"boom"), "answered HTTP 500"),
        ((200, "text/html", b"<html>"), "did not answer JSON"),
        (
            json_body({"status": "0", "message": "NOTOK", "result": "Invalid API Key"}),
            "refused the request: Invalid API Key",
        ),
    ],
)
async def test_provider_failures_become_a_clear_result_not_a_crash(
    store: IntelStore, local_server, answer: tuple, message: str
) -> None:
    server: LocalServer = local_server(lambda path, q: answer)
    result = await _screen(store, C0FFEE, provider=ChainProvider(server.url, SECRET))
    assert result["onchain"]["checked"] is False
    assert message in result["onchain"]["error"]
    assert result["linked"] is True
    assert SECRET not in json.dumps(result)


async def test_an_unreachable_provider_raises_a_chain_provider_error_naming_it() -> None:
    provider = ChainProvider("http://127.0.0.1:9/api", SECRET, timeout=2)
    with pytest.raises(ChainProviderError, match="127.0.0.1:9/api") as caught:
        await provider.transactions(C0FFEE)
    assert SECRET not in str(caught.value)


async def test_an_empty_store_says_no_data_is_loaded(empty_store: IntelStore) -> None:
    with pytest.raises(NoIncidentDataError):
        await _screen(empty_store, C0FFEE)


async def test_a_bsc_address_is_asked_for_with_the_bsc_chain_id(store: IntelStore, local_server) -> None:
    server: LocalServer = local_server(lambda path, q: json_body({"status": "1", "message": "OK", "result": []}))
    result = await _screen(store, EULER_VICTIM_FREE, "bsc", ChainProvider(server.url, None))
    assert "chainid=56" in server.seen[0] and result["onchain"]["chain_id"] == 56


def test_the_provider_never_shows_credentials_in_its_url() -> None:
    provider = ChainProvider("https://user:pw@api.example.org/api?apikey=" + SECRET, None)
    assert provider.display_url == "https://api.example.org/api"
    assert SECRET not in repr(provider) and "pw" not in repr(provider)
