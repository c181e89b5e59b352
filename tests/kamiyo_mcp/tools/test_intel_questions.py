"""Questions a person would ask, through the official MCP client against a real server.

Each question's expected incidents are read from the raw upstream files (DeFiLlama's /hacks, the
incident ledger; BlockSec; DeFiHackLabs' READMEs), never from the server's own data or output:
every expected incident must be in the answer (all pages), and every answered incident must meet
the question's filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from tests.support import ServerProcess
from tests.support_mcp import mcp_session, text_of

from .raw_sources import RawIncident, blocksec, defihacklabs, defillama

Rows = list[dict[str, Any]]


def dl(keep: Callable[[RawIncident], bool]) -> Callable[[], list[RawIncident]]:
    return lambda: [r for r in defillama() if keep(r)]


def on(chain: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: chain in row.get("chains", [])


def between(low: str, high: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: low <= row["date"] <= high


def loss(above: float = 0, below: float = float("inf")) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row.get("amount_usd") is not None and above < row["amount_usd"] < below


def every(*checks: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda row: all(check(row) for check in checks)


def flash(r: RawIncident) -> bool:
    return r.says("flash", "loan") or r.says("flashloan")


@dataclass
class Question:
    text: str
    expected: Callable[[], list[RawIncident]]
    each: Callable[[dict[str, Any]], bool] = lambda row: True
    args: dict[str, Any] = field(default_factory=dict)
    first: Callable[[], RawIncident] | None = None


QUESTIONS = [
    Question("flash loan attacks on BSC in 2023", dl(lambda r: flash(r) and "BSC" in r.chains and r.in_year(2023)),
             every(on("BSC"), between("2023-01-01", "2023-12-31"))),
    Question("reentrancy hacks in 2022", dl(lambda r: r.says("reentrancy") and r.in_year(2022)),
             between("2022-01-01", "2022-12-31")),
    Question("Ronin", dl(lambda r: r.says("ronin"))),
    Question("Euler", dl(lambda r: r.says("euler"))),
    Question("what happened to Euler in March 2023", dl(lambda r: r.says("euler") and r.date.startswith("2023-03")),
             between("2023-03-01", "2023-03-31")),
    Question("bridge hacks over $100M", dl(lambda r: r.says("bridge") and (r.amount or 0) > 1e8), loss(above=1e8)),
    Question("private key compromises in 2024",
             dl(lambda r: r.says("private", "key", "compromis") and r.in_year(2024)),
             between("2024-01-01", "2024-12-31")),
    Question("Solana exploits since 2024", dl(lambda r: "Solana" in r.chains and r.date >= "2024-01-01"),
             between("2024-01-01", "9999")),
    Question("hacks on Arbitrum over $10M", dl(lambda r: "Arbitrum" in r.chains and (r.amount or 0) > 1e7),
             every(on("Arbitrum"), loss(above=1e7))),
    Question("oracle attacks on Ethereum in 2023",
             dl(lambda r: r.says("oracle") and "Ethereum" in r.chains and r.in_year(2023)),
             every(on("Ethereum"), between("2023-01-01", "2023-12-31"))),
    Question("Curve", dl(lambda r: r.says("curve"))),
    Question("Poly Network", dl(lambda r: r.says("poly", "network"))),
    Question("phishing", dl(lambda r: r.says("phishing"))),
    Question("rugpulls in 2021", dl(lambda r: r.says("rugpull") and r.in_year(2021)),
             between("2021-01-01", "2021-12-31")),
    Question("access control exploits on BSC", dl(lambda r: r.says("access", "control") and "BSC" in r.chains),
             on("BSC")),
    Question("incidents in March 2022", dl(lambda r: r.date.startswith("2022-03")),
             between("2022-03-01", "2022-03-31")),
    Question("exploits between $1M and $5M on Polygon in 2021",
             dl(lambda r: "Polygon" in r.chains and r.in_year(2021) and 1e6 < (r.amount or 0) < 5e6),
             every(on("Polygon"), between("2021-01-01", "2021-12-31"), loss(1e6, 5e6))),
    Question("infrastructure attacks over $50M", dl(lambda r: r.says("infrastructure") and (r.amount or 0) > 5e7),
             loss(above=5e7)),
    Question("signature exploits", dl(lambda r: r.says("signature"))),
    Question("Nomad", dl(lambda r: r.says("nomad"))),
    Question("Mango Markets", dl(lambda r: r.says("mango", "markets"))),
    Question("reentrancy on Ethereum before 2020",
             dl(lambda r: r.says("reentrancy") and "Ethereum" in r.chains and r.date < "2020-01-01"),
             every(on("Ethereum"), between("0000", "2019-12-31"))),
    Question("hacks on Base in 2025", dl(lambda r: "Base" in r.chains and r.in_year(2025)),
             every(on("Base"), between("2025-01-01", "2025-12-31"))),
    Question("flashloan price manipulation", dl(lambda r: r.says("flashloan", "price", "manipulation"))),
    Question("hacks under $500k on BSC in 2024",
             dl(lambda r: "BSC" in r.chains and r.in_year(2024) and r.amount is not None and r.amount < 5e5),
             every(on("BSC"), between("2024-01-01", "2024-12-31"), loss(below=5e5))),
    Question("Vyper compiler bug", dl(lambda r: r.says("vyper"))),
    Question("infinite mint", dl(lambda r: r.says("infinite", "mint"))),
    Question("largest hacks ever", dl(lambda r: False), first=lambda: max(defillama(), key=lambda r: r.amount or 0)),
    Question("biggest exploits in 2022", dl(lambda r: False), between("2022-01-01", "2022-12-31"),
             first=lambda: max((r for r in defillama() if r.in_year(2022)), key=lambda r: r.amount or 0)),
    Question("latest phishing attacks", dl(lambda r: r.says("phishing")),
             first=lambda: max((r for r in defillama() if r.says("phishing")), key=lambda r: r.date)),
    Question("exploits on Ethereum", dl(lambda r: "Ethereum" in r.chains and r.date >= "2025-06-01"), on("Ethereum"),
             args={"since": "2025-06-01"}),
    Question("", dl(lambda r: r.in_year(2024) and "Optimism" in r.chains), every(on("Optimism")),
             args={"chain": "optimism", "since": "2024-01-01", "until": "2024-12-31"}),
    Question("DFS", lambda: [r for r in defihacklabs() if r.name == "DFS"]),
    Question("Euler Finance", lambda: [r for r in blocksec() if r.name == "Euler Finance"]),
]


async def _all_pages(client: Any, question: Question) -> tuple[Rows, dict[str, Any]]:
    arguments: dict[str, Any] = {"query": question.text, **question.args, "limit": 200}
    rows: Rows = []
    while True:
        result = await client.call_tool("search_crypto_exploits", arguments)
        assert not result.is_error and result.structured_content, text_of(result)
        answer = result.structured_content
        rows += answer["exploits"]
        if not answer.get("next_cursor"):
            return rows, answer
        arguments = {"cursor": answer["next_cursor"], "limit": 200}


@pytest.fixture(scope="module")
def answers(intel_server: ServerProcess, tier_tokens: dict[str, str]) -> dict[str, tuple[Rows, dict[str, Any]]]:
    """Every question asked once, in one MCP session (all pages followed)."""

    async def ask_all() -> dict[str, tuple[Rows, dict[str, Any]]]:
        found = {}
        async with mcp_session(intel_server.url, tier_tokens["enterprise"]) as client:
            for question in QUESTIONS:
                found[question.text + repr(question.args)] = await _all_pages(client, question)
        return found

    return asyncio.run(ask_all())


def test_there_are_more_than_thirty_questions_and_each_has_an_answer_in_the_raw_sources() -> None:
    assert len(QUESTIONS) >= 30
    for question in QUESTIONS:
        assert question.expected() or question.first, question.text


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.text or repr(q.args) for q in QUESTIONS])
async def test_a_question_finds_every_incident_the_raw_sources_list_and_only_matching_ones(
    question: Question, answers: dict[str, tuple[Rows, dict[str, Any]]]
) -> None:
    rows, last_page = answers[question.text + repr(question.args)]
    found = {(row["date"], row["protocol"]) for row in rows}
    expected = {(r.date, r.name) for r in question.expected() if r.source == "defillama"}
    assert expected <= found, f"missing {sorted(expected - found)[:5]} (understood as {last_page['understood_as']})"
    # Another source's report may be shown as DeFiLlama's (the canonical one), dated up to 3 days apart.
    days = {date.fromisoformat(row["date"]) for row in rows}
    for other in (r for r in question.expected() if r.source != "defillama"):
        assert any(abs((date.fromisoformat(other.date) - day).days) <= 3 for day in days), other
    assert len(rows) == len({row["id"] for row in rows}) == min(last_page["total_matching"], last_page["pageable"])
    assert all(question.each(row) for row in rows), [r for r in rows if not question.each(r)][:3]
    if question.first:
        top = question.first()
        assert (rows[0]["date"], rows[0]["protocol"]) == (top.date, top.name)


async def test_a_misspelt_question_says_why_it_is_empty_and_suggests_the_spelling_that_works(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "flsh loan attacks on BSC in 2023"})
        answer = result.structured_content
        assert answer and answer["total_matching"] == 0
        assert "'flsh'" in answer["empty_reason"]
        suggestion = answer["suggestion"]
        assert suggestion["query"] == "flash loan" and suggestion["chain"] == "BSC" and suggestion["until"]
        followed = await client.call_tool("search_crypto_exploits", {
            k: suggestion[k] for k in ("query", "chain", "since", "until") if k in suggestion})
    assert followed.structured_content and followed.structured_content["total_matching"] == suggestion["matches"]
    expected = {(r.date, r.name) for r in defillama() if flash(r) and "BSC" in r.chains and r.in_year(2023)}
    assert expected <= {(e["date"], e["protocol"]) for e in followed.structured_content["exploits"]}
    assert "Nearest search that finds incidents" in text_of(result)


async def test_a_window_with_no_incidents_suggests_a_wider_one(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits", {"query": "reentrancy on Ethereum since 2030"})
    answer = result.structured_content
    assert answer and answer["total_matching"] == 0
    assert "2030-01-01..today: 0" in answer["empty_reason"]
    assert answer["suggestion"]["change"].startswith("a wider window") and "since" not in answer["suggestion"]
    assert answer["suggestion"]["matches"] >= len([r for r in defillama()
                                                   if r.says("reentrancy") and "Ethereum" in r.chains])


async def test_the_answer_echoes_how_the_text_was_understood(
    intel_server: ServerProcess, tier_tokens: dict[str, str]
) -> None:
    async with mcp_session(intel_server.url, tier_tokens["team"]) as client:
        result = await client.call_tool("search_crypto_exploits",
                                        {"query": "flash loan attacks on BSC in 2023 over $1M"})
        explicit = await client.call_tool("search_crypto_exploits",
                                          {"query": "flash loans on BSC", "chain": "ethereum"})
    assert result.structured_content and explicit.structured_content
    understood = result.structured_content["understood_as"]
    assert understood["words"] == ["flash", "loan"] and understood["chain"] == "BSC"
    assert (understood["since"], understood["until"], understood["min_usd"]) == ("2023-01-01", "2023-12-31", 1e6)
    assert understood["from_text"] == {"chain": "on BSC", "dates": "2023", "amount": "over $1M"}
    assert "Read from the query" in text_of(result)
    overridden = explicit.structured_content["understood_as"]
    assert overridden["chain"] == "Ethereum" and overridden["from_text"] == {"overridden by arguments": "on BSC"}
