"""The indexed risk assessment answers exactly what the reference computation does (every name in
the data, several windows, chains and detail levels)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kamiyo_mcp.intel.names import name_key
from kamiyo_mcp.intel.queries import assess_protocol_risk
from kamiyo_mcp.intel.store import IntelStore

from .risk_reference import Reference

NOW = datetime(2026, 6, 15, tzinfo=UTC)
ODD_SPELLINGS = ["Eulr Financ", "curve", "CURVE dex", "Curv", "uniswap v3", "the dao", "Ronin Network", "Aave",
                 "Compound Finance", "zzzz-nothing", "Bal", "Balancer V2", "yearn", "Unknown", "MEV bot"]


def compact(value: Any) -> Any:
    """``value`` without None and empty lists, as the answer's wire form leaves them out."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


async def _compare(store: IntelStore, names: list[str], window: int, chain: str | None, detail: str) -> None:
    reference = Reference(await store.group_summaries())
    peers = reference.peer_scores(NOW.date(), window)
    for name in names:
        answer = await assess_protocol_risk(store, protocol=name, chain=chain, time_window_days=window,
                                            detail=detail, now=NOW)
        got = answer.wire()
        assert (got.pop("detail"), got.pop("data_as_of", None)) == (detail, (await store.stamp()).data_as_of)
        want = reference.assess(peers, name, answer.chain, window, detail, NOW.date())
        assert got == compact(want), name


async def test_every_name_in_the_data_gets_the_reference_answer(store: IntelStore) -> None:
    names = sorted({n for g in await store.group_summaries() for n in g.member_names})
    await _compare(store, names + ODD_SPELLINGS, 90, None, "full")


async def test_every_four_letter_prefix_gets_the_reference_answer(store: IntelStore) -> None:
    # Prefixes match several protocols at once: their incidents merge, newest first.
    names = {n for g in await store.group_summaries() for n in g.member_names}
    prefixes = sorted({name_key(n)[:4] for n in names if len(name_key(n)) > 4})
    await _compare(store, prefixes, 3650, None, "summary")


@pytest.mark.parametrize(("window", "chain", "detail"), [(1, None, "summary"), (365, "BSC", "full"),
                                                         (3650, "Ethereum", "full"), (30, None, "basic")])
async def test_windows_chains_and_details_get_the_reference_answer(
    store: IntelStore, window: int, chain: str | None, detail: str
) -> None:
    names = sorted({n for g in await store.group_summaries() for n in g.member_names})[::7]
    await _compare(store, names + ODD_SPELLINGS, window, chain, detail)
