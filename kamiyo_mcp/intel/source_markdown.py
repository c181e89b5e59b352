"""Parser of DeFiHackLabs' README incident lists (pure).

An entry starts at a heading ``### YYYYMMDD [-] Name - technique`` and runs to the next one; the
``Lost:`` line gives the loss (read as USD only when it states dollars: token amounts stay
unknown rather than guessed), the ``Contract`` link the PoC, and the link references the source
URL, the chain (dominant block-explorer domain) and attack transaction hashes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from .errors import SourceFormatError
from .names import slug
from .records import Incident

HEADING = re.compile(r"^###\s*(\d{8})\s*(?:-\s*)?(.+?)\s*$")
_LOST = re.compile(r"^#{2,5}\s*Lost\s*:\s*(.*)$", re.IGNORECASE)
_POC = re.compile(r"\]\(((?:\.\./)*\.?/?src/test/[^)\s]+\.sol)\)")
_URL = re.compile(r"https?://[^\s)>\]]+")
_TX = re.compile(r"/tx/(0x[0-9a-fA-F]{64})")
EXPLORERS: dict[str, str] = {
    "etherscan.io": "Ethereum",
    "bscscan.com": "BSC",
    "arbiscan.io": "Arbitrum",
    "basescan.org": "Base",
    "polygonscan.com": "Polygon",
    "optimistic.etherscan.io": "Optimism",
    "snowtrace.io": "Avalanche",
    "ftmscan.com": "Fantom",
    "blastscan.io": "Blast",
    "lineascan.build": "Linea",
    "era.zksync.network": "zkSync Era",
    "gnosisscan.io": "Gnosis Chain",
    "sonicscan.org": "Sonic",
    "mantlescan.xyz": "Mantle",
    "berascan.com": "Berachain",
    "cronoscan.com": "Cronos",
}
_DOLLARS = re.compile(
    r"(?:US\$|\$)\s*~?\s*(\.?\d[\d.,]*+)\s*(?:(k|m|b|million|billion)\b)?(?![A-Za-z])"
    r"|(\.?\d[\d.,]*+)\s*(?:(k|m|b|million|billion)\b)?\s*(?:US\$|USD\b|\$(?![A-Za-z]))",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "million": 1e6, "billion": 1e9}


def _to_number(digits: str) -> float:
    digits = digits.rstrip(".,")
    if "," in digits and "." not in digits and not re.fullmatch(r"\d{1,3}(,\d{3})+", digits):
        digits = digits.replace(",", ".")  # a decimal comma, as in "4,5M"
    return float(digits.replace(",", ""))


def dollars(text: str | None) -> float | None:
    """The USD amount a loss text states in dollars, or None (token amounts are not converted)."""
    if not text:
        return None
    match = _DOLLARS.search(text)
    if not match:
        return None
    digits, unit = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    try:
        value = _to_number(digits)
    except ValueError:
        return None
    return round(value * _SCALE.get((unit or "").lower(), 1.0), 2)


def _explorer_chain(urls: list[str]) -> str | None:
    votes: Counter[str] = Counter()
    for url in urls:
        host = url.split("/")[2].lower() if url.count("/") >= 2 else ""
        host = host.removeprefix("www.")
        if host in EXPLORERS:
            votes[EXPLORERS[host]] += 1
    return votes.most_common(1)[0][0] if votes else None


def _split_heading(rest: str) -> tuple[str, str]:
    # Headings use "Name - technique"; one upstream heading is slugged as "-MARA---price-manipulation".
    if " - " in rest:
        name, _, technique = rest.partition(" - ")
        return name.strip(), technique.strip()
    parts = re.split(r"-{2,}", rest.strip("- "), maxsplit=1)
    return parts[0], (parts[1].replace("-", " ") if len(parts) > 1 else "")


def readme_label(name: str) -> str:
    """``past/2023/README.md`` or ``README.md``, as the normalized data names the file."""
    match = re.search(r"past/\d{4}/README\.md$", name.replace("\\", "/"))
    return match.group(0) if match else "README.md"


def parse_defihacklabs(text: str, name: str) -> Iterator[Incident | SourceFormatError]:
    """Incidents of one DeFiHackLabs README."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("###") and re.match(r"^###\s*\d", line)]
    seen: set[str] = set()
    for n, first in enumerate(starts):
        body = lines[first + 1 : starts[n + 1] if n + 1 < len(starts) else len(lines)]
        heading = HEADING.match(lines[first])
        where = f"{name}:{first + 1}"
        if not heading:
            yield SourceFormatError(where, "incident heading is not '### YYYYMMDD Name - technique'")
            continue
        stamp, rest = heading.groups()
        day = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", day):
            yield SourceFormatError(where, f"bad date {stamp!r} in incident heading")
            continue
        protocol, technique = _split_heading(rest)
        protocol = protocol.strip()
        if not protocol:
            yield SourceFormatError(where, "incident heading has no protocol name")
            continue
        loss_text = next((m.group(1).strip() for m in map(_LOST.match, body) if m), None)
        urls = [u.rstrip(".,") for line in body if not line.startswith("[") for u in _URL.findall(line)]
        poc = next((m.group(1) for line in body for m in [_POC.search(line)] if m), None)
        chain = _explorer_chain(urls)
        hashes = list(dict.fromkeys(h.lower() for u in urls for h in _TX.findall(u)))
        ident = f"defihacklabs:{day}:{slug(protocol)}"
        if ident in seen:
            ident += "-2"
        seen.add(ident)
        yield Incident(
            id=ident,
            source="defihacklabs",
            date=day,
            protocol=protocol,
            chains=(chain,) if chain else (),
            inferred=frozenset({"chains", "txs"}),
            technique=technique.strip() or None,
            amount_usd=dollars(loss_text),
            source_url=urls[0] if urls else None,
            extra={
                "loss_text": loss_text,
                "references": urls,
                "readme_file": readme_label(name),
                "poc_path": poc.lstrip("./") if poc else None,
                "tx_hashes": hashes,
                "txs": [{"chain": chain, "hash": h} for h in hashes] if chain else [],
            },
        )
