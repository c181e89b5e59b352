"""Exceptions of the exploit-intelligence package.

Every error raised on purpose by ``kamiyo_mcp.intel`` derives from ``IntelError``::

    IntelError
    ├── IntelInputError        a caller's argument is wrong; the message is shown to the user verbatim
    ├── NoIncidentDataError    the incident store is empty; the message says how to load data
    ├── SourceFormatError      an ingest source (file, row) is malformed; names the file and line
    ├── SourceFetchError       an http(s) ingest source could not be fetched; names the URL
    ├── ChainProviderError     the on-chain (Etherscan-compatible) provider failed or refused
    └── IntelStoreError        the incident store's SQLite file failed (the driver's error is the cause)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kamiyo_mcp.intel.report import IngestReport


class IntelError(Exception):
    """Base of every error raised on purpose by the intel package."""


class IntelInputError(IntelError):
    """A bad argument; the message is precise enough to show to the user as is."""


class NoIncidentDataError(IntelError):
    """No incident is loaded yet."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No exploit data is loaded yet. Load incidents with `kamiyo-mcp ingest <source>` "
            "(a DeFiLlama /hacks file or https://api.llama.fi/hacks, BlockSec incident JSON, "
            "DeFiHackLabs README files, or the normalized exploits.jsonl / addresses.jsonl)."
        )


class SourceFormatError(IntelError):
    """A malformed ingest source or row; ``location`` is ``file`` or ``file:line``."""

    def __init__(self, location: str, problem: str) -> None:
        super().__init__(f"{location}: {problem}")
        self.location = location
        self.problem = problem


class SourceFetchError(IntelError):
    """An http(s) source could not be fetched; ``report`` holds what the other sources loaded."""

    def __init__(self, message: str, report: IngestReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class ChainProviderError(IntelError):
    """The on-chain provider could not answer (network, HTTP status, API error)."""


class IntelStoreError(IntelError):
    """The incident store could not run a statement or open its file (locked, damaged, unreadable).

    Its message is for the log (it names SQLite's error); callers answer users with their own words.
    """
