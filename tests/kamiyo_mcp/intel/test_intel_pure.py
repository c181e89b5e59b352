"""Pure logic: names, dates, addresses, FTS sanitising, progress bar, dollar parsing."""

from __future__ import annotations

from datetime import date

import pytest

from kamiyo_mcp.intel.addresses import eip55_checksum, validate_base58_address, validate_evm_address
from kamiyo_mcp.intel.dates import parse_since
from kamiyo_mcp.intel.errors import IntelInputError
from kamiyo_mcp.intel.fts import match_expression
from kamiyo_mcp.intel.names import match_names, name_key, slug, suggest_names
from kamiyo_mcp.intel.progress import render_bar
from kamiyo_mcp.intel.source_markdown import dollars


@pytest.mark.parametrize("spelling", ["Euler V1", "EulerFinance", "Euler Finance", "euler", " EULER  finance "])
def test_spellings_of_one_protocol_share_a_name_key(spelling: str) -> None:
    assert name_key(spelling) == "euler"


def test_generic_suffixes_are_dropped_but_never_the_whole_name() -> None:
    assert name_key("Ronin Bridge") == "ronin"
    assert name_key("Bankroll_Network") == "bankroll"
    assert name_key("Finance") == "finance"


def test_slug_matches_the_normalized_id_scheme() -> None:
    assert slug("Ronin Bridge") == "ronin-bridge"
    assert slug("LpdFi (LOOPSDAO)") == "lpdfi-loopsdao"


def test_matching_prefers_exact_keys_then_prefixes_and_suggests_close_names() -> None:
    names = ["Euler V1", "EulerFinance", "Eulerbeats", "Curve Finance"]
    assert match_names("euler finance", names) == ["Euler V1", "EulerFinance"]
    assert match_names("cur", names) == []
    assert match_names("curve", names) == ["Curve Finance"]
    assert "Curve Finance" in suggest_names("Crve", names)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2024-01-31", date(2024, 1, 31)),
        ("2024-01-31T23:30:00", date(2024, 1, 31)),
        ("2024-01-31T23:30:00-02:00", date(2024, 2, 1)),
        ("2024-01-31T10:00:00Z", date(2024, 1, 31)),
        ("", None),
    ],
)
def test_since_accepts_iso_dates_and_datetimes_as_utc_days(text: str, day: date | None) -> None:
    assert parse_since(text) == day


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", "01/02/2024", "2024-02-30", "1" * 100])
def test_since_that_is_not_iso_is_refused_with_the_value_quoted(text: str) -> None:
    with pytest.raises(IntelInputError, match=r"since: .* is not an ISO date \(YYYY-MM-DD\) or datetime"):
        parse_since(text)


def test_since_error_message_is_exactly_as_documented() -> None:
    with pytest.raises(IntelInputError) as caught:
        parse_since("2024-13-01")
    assert str(caught.value) == "since: '2024-13-01' is not an ISO date (YYYY-MM-DD) or datetime"


@pytest.mark.parametrize(
    "address",
    [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_eip55_reference_vectors_are_accepted_and_lowercased(address: str) -> None:
    assert eip55_checksum(address.lower()) == address
    assert validate_evm_address(address, "Ethereum") == address.lower()


def test_all_lower_and_all_upper_addresses_skip_the_checksum() -> None:
    assert validate_evm_address("0x" + "ab" * 20, "Ethereum") == "0x" + "ab" * 20
    assert validate_evm_address("0x" + "AB" * 20, "Ethereum") == "0x" + "ab" * 20


def test_mixed_case_with_a_wrong_checksum_is_refused_with_the_expected_spelling() -> None:
    with pytest.raises(IntelInputError, match="fails the EIP-55 checksum.*0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"):
        validate_evm_address("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "Ethereum")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "expected 0x followed by 40 hex digits"),
        ("0x1234", "expected 40 hex digits after 0x, got 4"),
        ("0x" + "g" * 40, "non-hex characters: g"),
    ],
)
def test_malformed_evm_addresses_are_refused_precisely(address: str, problem: str) -> None:
    with pytest.raises(IntelInputError, match=problem):
        validate_evm_address(address, "Ethereum")


def test_solana_addresses_are_base58_of_32_to_44_characters() -> None:
    good = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"
    assert validate_base58_address(good, "Solana") == good
    with pytest.raises(IntelInputError, match="characters not in base58: '0'"):
        validate_base58_address("0" + good[1:], "Solana")
    with pytest.raises(IntelInputError, match="32–44 characters; got 10"):
        validate_base58_address(good[:10], "Solana")


@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ('euler "flash', '(("euler"* AND "flash"*) OR "eulerflash"*)'),
        ("x OR y) NEAR(", '(("x"* AND "or"*) OR "xor"*) AND (("y"* AND "near"*) OR "ynear"*)'),
        ("'; DROP TABLE intel_incidents; --", '(("drop"* AND "table"*) OR "droptable"*) AND "intel"*'),
        ("flash loan attack", '(("flash"* AND "loan"*) OR "flashloan"*)'),
        ("hack", '"hack"*'),
        ("reentrancy", '"reentrancy"*'),
        ("  ", None),
        (None, None),
    ],
)
def test_search_text_becomes_quoted_prefix_terms_only(query: str | None, expression: str | None) -> None:
    assert match_expression(query) == expression


def test_search_text_without_words_is_refused() -> None:
    with pytest.raises(IntelInputError, match="no searchable words"):
        match_expression('"*()')


def test_overlong_search_text_is_refused() -> None:
    with pytest.raises(IntelInputError, match="too long"):
        match_expression("a" * 500)


@pytest.mark.parametrize(
    ("text", "usd"),
    [
        ("~$8.2 million", 8_200_000),
        ("4,5M USD", 4_500_000),
        ("~200,000 US$", 200_000),
        ("Multiple ERC-20 Tokens (~152M US$)", 152_000_000),
        ("17 BNB", None),
        ("155 $ETH", None),
        ("25,378 BUSD", None),
        ("1.5M", None),
        (None, None),
    ],
)
def test_losses_count_as_usd_only_when_stated_in_dollars(text: str | None, usd: float | None) -> None:
    assert dollars(text) == usd


def test_progress_bar_text_shows_fraction_and_counts() -> None:
    assert render_bar("x", 5, 10, width=10) == "x [#####.....]  50% 5/10"
