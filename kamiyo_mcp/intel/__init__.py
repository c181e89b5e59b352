"""Exploit intelligence: ingesting incident sources into SQLite and answering the intel tools.

Modules: ``store`` (all SQL), ``ingest`` (sources → store), ``queries`` (tool functions),
``chain_provider`` (Etherscan-compatible client); pure logic lives in ``names``, ``dates``,
``addresses``, ``fts``, ``formats`` and the ``source_*`` parsers, ``linking`` and ``risk``.
"""

from .chain_provider import ChainProvider
from .errors import (
    ChainProviderError,
    IntelError,
    IntelInputError,
    NoIncidentDataError,
    SourceFetchError,
    SourceFormatError,
)
from .ingest import DEFAULT_SOURCE, ingest_if_empty, ingest_sources, sources_from_setting
from .queries import TIER_CAPS, assess_protocol_risk, exploit_details, screen_wallet, search_exploits
from .report import IngestReport, SourceReport
from .store import IntelStore

__all__ = [
    "DEFAULT_SOURCE",
    "TIER_CAPS",
    "ChainProvider",
    "ChainProviderError",
    "IngestReport",
    "IntelError",
    "IntelInputError",
    "IntelStore",
    "NoIncidentDataError",
    "SourceFetchError",
    "SourceFormatError",
    "SourceReport",
    "assess_protocol_risk",
    "exploit_details",
    "ingest_if_empty",
    "ingest_sources",
    "screen_wallet",
    "search_exploits",
    "sources_from_setting",
]
