"""Curated labels of well-known addresses, read from the repository's ``data/known_addresses.json``.

The incident sources name whoever sent an exploit transaction as its attacker, so whitehat and MEV
operators that front-run exploits to return the funds appear as attackers. The file lists such
addresses with the sources that say so; nothing is labelled without a source.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from .answer_wallet import EntitySource, KnownEntity
from .chains import EVM_CHAINS

DATA_FILE = "known_addresses.json"


@cache
def _entities() -> dict[tuple[str, str], KnownEntity]:
    text = resources.files(__package__).joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    found: dict[tuple[str, str], KnownEntity] = {}
    for entry in json.loads(text)["entities"]:
        entity = KnownEntity(name=entry["name"], kind=entry["kind"], summary=entry["summary"],
                             sources=[EntitySource(**s) for s in entry["sources"]])
        found[(entry["family"], entry["address"].lower())] = entity
    return found


def known_entity(address: str, chain: str | None) -> KnownEntity | None:
    """The curated label of ``address`` on ``chain`` (an EVM address is one account on every EVM chain)."""
    family = "evm" if chain is None or chain in EVM_CHAINS else chain.casefold()
    key = address.lower() if family == "evm" else address
    return _entities().get((family, key))
