"""The upstream incident files as published (tests/data/exploits/raw), read without the server's code.

Questions' expected answers come from here, not from the server's own normalized data or output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from tests.support import DATA

RAW = DATA / "exploits" / "raw"


@dataclass(frozen=True)
class RawIncident:
    source: str
    date: str
    name: str
    chains: tuple[str, ...]
    technique: str
    classification: str
    amount: float | None

    def says(self, *words: str) -> bool:
        """Every word starts a word of the name, technique or classification (case-insensitive)."""
        text = " ".join((self.name, self.technique, self.classification)).lower()
        tokens = re.findall(r"[a-z0-9]+", text)
        return all(any(t.startswith(w) for t in tokens) for w in words)

    def in_year(self, year: int) -> bool:
        return self.date.startswith(str(year))


@cache
def defillama() -> tuple[RawIncident, ...]:
    rows = json.loads((RAW / "defillama" / "hacks.json").read_text())
    return tuple(
        RawIncident("defillama", datetime.fromtimestamp(r["date"], UTC).date().isoformat(), r["name"].strip(),
                    tuple(r["chain"] or ()), r["technique"] or "", r["classification"] or "",
                    None if r["amount"] is None else float(r["amount"]))
        for r in rows
    )


@cache
def blocksec() -> tuple[RawIncident, ...]:
    rows = json.loads((RAW / "blocksec" / "all.json").read_text())["list"]
    return tuple(
        RawIncident("blocksec", datetime.fromtimestamp(r["date"] / 1000, UTC).date().isoformat(), r["project"],
                    (), r["rootCause"] or "", "", float(r["loss"]) if r["loss"] else None)
        for r in rows
    )


@cache
def defihacklabs() -> tuple[RawIncident, ...]:
    found = []
    for readme in sorted(RAW.glob("defihacklabs/**/README.md")):
        for day, name, technique in re.findall(r"^### (\d{8}) - (.+?) - (.*)$", readme.read_text(), re.MULTILINE):
            found.append(RawIncident("defihacklabs", f"{day[:4]}-{day[4:6]}-{day[6:]}", name.strip(), (),
                                     technique.strip(), "", None))
    return tuple(found)
