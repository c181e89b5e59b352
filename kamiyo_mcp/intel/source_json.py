"""Parsers of the JSON API responses: DeFiLlama ``/hacks`` and BlockSec's incident library (pure).

Rows are yielded with their line number so a bad row is reported as ``file:line`` and skipped
while the rest loads; a file that is not JSON at all raises ``SourceFormatError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .chains import BLOCKSEC_CHAIN_IDS
from .dates import utc_day_from_unix
from .errors import SourceFormatError
from .names import slug
from .records import AddressLink, Incident

Parsed = Incident | AddressLink | SourceFormatError
_WS = re.compile(r"[\s,]*")


def json_array_items(text: str, name: str, start: int) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for each element of the JSON array that opens at ``text[start]``.

    Raises:
        SourceFormatError: the array is not valid JSON (names the line of the fault).
    """
    decoder = json.JSONDecoder()
    pos = start + 1
    while True:
        skipped = _WS.match(text, pos)
        pos = skipped.end() if skipped else pos
        if pos >= len(text):
            raise SourceFormatError(f"{name}:{text.count(chr(10), 0, pos) + 1}", "unterminated JSON array")
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise SourceFormatError(f"{name}:{exc.lineno}", f"invalid JSON ({exc.msg})") from None
        yield line, value


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def parse_defillama(text: str, name: str) -> Iterator[Parsed]:
    """Incidents of a DeFiLlama ``/hacks`` response (a JSON array)."""
    start = text.find("[")
    seen: set[str] = set()
    for line, row in json_array_items(text, name, start):
        where = f"{name}:{line}"
        try:
            if not isinstance(row, dict):
                raise ValueError("expected an object")
            protocol = str(row["name"]).strip()
            if not protocol:
                raise ValueError("empty 'name'")
            day = utc_day_from_unix(float(row["date"]))
            chains = row.get("chain") or []
            if not isinstance(chains, list):
                raise ValueError("'chain' must be a list")
            amount = _number(row.get("amount"))
            returned = _number(row.get("returnedFunds"))
        except KeyError as exc:
            yield SourceFormatError(where, f"missing field {exc.args[0]!r}")
            continue
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            yield SourceFormatError(where, f"bad value ({exc})")
            continue
        ident = f"defillama:{day}:{slug(protocol)}"
        if ident in seen:
            ident += "-2"
        seen.add(ident)
        yield Incident(
            id=ident,
            source="defillama",
            date=day,
            protocol=protocol,
            chains=tuple(str(c) for c in chains if c),
            classification=row.get("classification") or None,
            technique=row.get("technique") or None,
            amount_usd=amount,
            returned_usd=returned,
            source_url=row.get("source") or None,
            extra={
                "target_type": row.get("targetType"),
                "bridge_hack": row.get("bridgeHack"),
                "language": row.get("language"),
                "defillama_id": row.get("defillamaId"),
                "parent_protocol_id": row.get("parentProtocolId"),
            },
        )


def _lower_if_hex(value: str) -> str:
    return value.lower() if value.startswith("0x") else value


def parse_blocksec(text: str, name: str) -> Iterator[Parsed]:
    """Incidents and attacker addresses of a BlockSec incident response (``{"list": [...]}``)."""
    match = re.search(r'"list"\s*:\s*\[', text)
    start = match.end() - 1 if match else text.find("[")
    for line, row in json_array_items(text, name, start):
        where = f"{name}:{line}"
        try:
            if not isinstance(row, dict):
                raise ValueError("expected an object")
            bid = int(row["id"])
            protocol = str(row["project"]).strip()
            day = utc_day_from_unix(float(row["date"]) / 1000.0)
            amount = _number(row.get("loss"))
            rescued = _number(row.get("rescued"))
            chain_ids = row.get("chainIds") or []
            txs_in = row.get("transactions") or []
        except KeyError as exc:
            yield SourceFormatError(where, f"missing field {exc.args[0]!r}")
            continue
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            yield SourceFormatError(where, f"bad value ({exc})")
            continue
        ident = f"blocksec:{bid}"
        chains = tuple(dict.fromkeys(BLOCKSEC_CHAIN_IDS[c] for c in chain_ids if c in BLOCKSEC_CHAIN_IDS))
        txs, attackers = [], []
        for tx in txs_in if isinstance(txs_in, list) else []:
            chain = BLOCKSEC_CHAIN_IDS.get(tx.get("chainId"), chains[0] if chains else "")
            tx_hash = str(tx.get("txnHash") or "")
            # An EVM "hash" of address length is an address pasted in the wrong field upstream.
            if tx_hash and not (tx_hash.startswith("0x") and len(tx_hash) == 42):
                txs.append({"chain": chain, "hash": _lower_if_hex(tx_hash)})
            attacker = str(tx.get("attacker") or "")
            if attacker and not attacker.startswith("http"):
                attackers.append((_lower_if_hex(attacker), chain))
        for address, chain in dict.fromkeys(attackers):
            yield AddressLink(address, chain, "attacker", ident, "blocksec", "transactions[].attacker")
        yield Incident(
            id=ident,
            source="blocksec",
            date=day,
            protocol=protocol,
            chains=chains,
            technique=row.get("rootCause") or None,
            amount_usd=amount,
            returned_usd=rescued if rescued else None,
            source_url=row.get("media") or None,
            extra={
                "blocksec_id": bid,
                "poc_url": row.get("poc") or None,
                "attacker_addresses": sorted({a for a, _ in attackers}),
                "tx_hashes": list(dict.fromkeys(t["hash"] for t in txs)),
                "txs": txs,
            },
        )
