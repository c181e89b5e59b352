"""The shared data README's spot-check facts, read back through the tool functions."""

from __future__ import annotations

from collections import Counter

import pytest

from kamiyo_mcp.intel.queries import exploit_details
from kamiyo_mcp.intel.store import IntelStore

from .conftest import canonical_reports

FACTS = [
    (
        "defillama:2022-03-23:ronin-bridge",
        {
            "protocol": "Ronin Bridge",
            "date": "2022-03-23",
            "amount_usd": 624e6,
            "chains": ["Ethereum"],
            "classification": "Infrastructure",
            "bridge_hack": True,
        },
    ),
    (
        "defillama:2025-02-21:bybit",
        {
            "amount_usd": 1.4e9,
            "returned_usd": 1.4e9,
            "target_type": "CEX",
            "technique": "Safe Multisig wallet Phishing Exploit",
        },
    ),
    (
        "defillama:2023-03-13:euler-v1",
        {"amount_usd": 197e6, "returned_usd": 240e6, "technique": "Flashloan Donate Function Logic Exploit"},
    ),
    (
        "defillama:2021-08-10:poly-network",
        {
            "amount_usd": 611e6,
            "chains": ["Ethereum", "BSC", "Polygon"],
            "technique": "Access Control Exploit",
            "bridge_hack": True,
        },
    ),
    (
        "defillama:2022-02-02:portal",
        {"amount_usd": 326e6, "returned_usd": 326e6, "chains": ["Solana"], "technique": "Signature Exploit"},
    ),
    ("defillama:2022-08-01:nomad", {"amount_usd": 190e6, "technique": "Trusted Root Exploit"}),
    ("defillama:2016-06-17:the-dao", {"amount_usd": 60e6, "technique": "Reentrancy"}),
    ("defillama:2020-12-28:lubian", {"amount_usd": 3.5e9}),
]


@pytest.mark.parametrize(("ident", "expected"), FACTS, ids=[f[0] for f in FACTS])
async def test_well_known_incidents_read_back_with_their_readme_facts(
    store: IntelStore, ident: str, expected: dict
) -> None:
    incident = (await exploit_details(store, ident)).incident.wire()
    assert {k: incident[k] for k in expected} == expected


async def test_the_stored_report_keeps_the_source_ids_the_answer_leaves_out(store: IntelStore) -> None:
    stored = await store.get_incident("defillama:2022-03-23:ronin-bridge")
    assert stored is not None and stored.incident.extra["defillama_id"] == 4440


async def test_nomad_reports_from_two_sources_are_one_incident(store: IntelStore) -> None:
    details = await exploit_details(store, "defihacklabs:2022-08-02:nomad-bridge")
    assert details.incident.id == "defillama:2022-08-01:nomad"
    assert details.requested_id == "defihacklabs:2022-08-02:nomad-bridge"
    dhl = next(r for r in details.other_reports if r.source == "defihacklabs")
    assert (dhl.loss_text, dhl.amount_usd) == ("Multiple ERC-20 Tokens (~152M US$)", 152_000_000)
    assert dhl.date == "2022-08-02"


async def test_defillama_incidents_per_year_match_the_readme(store: IntelStore) -> None:
    _, rows = await canonical_reports(store)
    per_year = Counter(r.incident.date[:4] for r in rows if r.incident.source == "defillama")
    assert dict(per_year) == {
        "2016": 1,
        "2017": 2,
        "2018": 2,
        "2020": 17,
        "2021": 71,
        "2022": 67,
        "2023": 97,
        "2024": 94,
        "2025": 97,
        "2026": 90,
    }


async def test_earliest_and_largest_defillama_incidents(store: IntelStore) -> None:
    _, rows = await canonical_reports(store)
    llama = [r.incident for r in rows if r.incident.source == "defillama"]
    assert min(llama, key=lambda i: i.date).id == "defillama:2016-06-17:the-dao"
    assert max(llama, key=lambda i: i.amount_usd or 0).id == "defillama:2020-12-28:lubian"
