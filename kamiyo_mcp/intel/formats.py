"""Recognising an ingest source's format from its content, and dispatching to its parser (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from .errors import SourceFormatError
from .records import AddressLink, Incident
from .source_json import parse_blocksec, parse_defillama
from .source_jsonl import parse_addresses_jsonl, parse_exploits_jsonl
from .source_markdown import parse_defihacklabs

Parsed = Incident | AddressLink | SourceFormatError
PARSERS: dict[str, Callable[[str, str], Iterator[Parsed]]] = {
    "defillama": parse_defillama,
    "blocksec": parse_blocksec,
    "defihacklabs": parse_defihacklabs,
    "exploits_jsonl": parse_exploits_jsonl,
    "addresses_jsonl": parse_addresses_jsonl,
}
_DHL_HEADING = re.compile(r"^###\s*\d{8}\s", re.MULTILINE)


def _first_json_line(text: str) -> object:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def detect_format(text: str, name: str) -> str:
    """The format name of ``text`` (a key of ``PARSERS``).

    Raises:
        SourceFormatError: the content matches no supported format.
    """
    head = text.lstrip()[:1]
    if head == "{":
        row = _first_json_line(text)
        if isinstance(row, dict) and {"address", "role", "incident_id"} <= row.keys():
            return "addresses_jsonl"
        if isinstance(row, dict) and {"id", "source", "protocol"} <= row.keys():
            return "exploits_jsonl"
        if re.search(r'"list"\s*:\s*\[', text[:200_000]) and '"project"' in text[:200_000]:
            return "blocksec"
    if head == "[":
        sample = text[:20_000]
        if '"project"' in sample and '"chainIds"' in sample:
            return "blocksec"
        if '"name"' in sample and '"date"' in sample:
            return "defillama"
    if head not in "{[" and _DHL_HEADING.search(text):
        return "defihacklabs"
    if head in "{[":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceFormatError(f"{name}:{exc.lineno}", f"invalid JSON ({exc.msg})") from None
    raise SourceFormatError(
        name,
        "unrecognised format (expected DeFiLlama /hacks JSON, BlockSec incident JSON, a DeFiHackLabs "
        "README, exploits.jsonl or addresses.jsonl)",
    )


def parse_source(text: str, name: str) -> tuple[str, Iterator[Parsed]]:
    """The detected format and the parsed items (incidents, address links, row errors)."""
    kind = detect_format(text, name)
    return kind, PARSERS[kind](text, name)
