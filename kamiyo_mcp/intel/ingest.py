"""Loading ingest sources (files, directories, http(s) URLs) into the incident store.

A source's format is detected from its content (``formats``). Each file is parsed, written in
batches (one transaction each), and reported per source; a malformed file or row becomes an error
line naming the file and line while the rest still loads. After all sources, incident groups are
recomputed once (``linking``), so the order sources are given in does not matter.

URLs that cannot be fetched do not stop the other sources: once everything else is loaded, a
``SourceFetchError`` naming the URL(s) is raised, carrying the report of what did load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

from .dates import iso_utc, utc_now
from .errors import SourceFetchError, SourceFormatError
from .fetch import fetch, safe_url
from .formats import parse_source
from .progress import ProgressBar
from .records import AddressLink, Incident
from .report import IngestReport, SourceReport
from .store import IntelStore

logger = logging.getLogger(__name__)

DEFAULT_SOURCE = "https://api.llama.fi/hacks"
BATCH = 500
# Inside a directory, incidents load before the addresses that point at them.
_ORDER = {"exploits.jsonl": 0, "addresses.jsonl": 2}

__all__ = [
    "DEFAULT_SOURCE",
    "IngestReport",
    "SourceReport",
    "expand_source",
    "ingest_if_empty",
    "ingest_sources",
    "load_text",
    "sources_from_setting",
]


def sources_from_setting(value: str | None) -> list[str]:
    """The sources named by ``KAMIYO_INTEL_SOURCES`` (comma- or whitespace-separated; default DeFiLlama)."""
    if value is None or not value.strip():
        return [DEFAULT_SOURCE]
    return [part for part in value.replace(",", " ").split() if part]


def expand_source(source: str) -> list[str]:
    """The files (or the URL) a source stands for.

    A directory holding ``*.jsonl`` files (the shared exploits directory) stands for those files;
    any other directory for its ``*.json``, ``*.jsonl`` and ``README.md`` files, recursively.
    """
    if source.startswith(("http://", "https://")):
        return [source]
    path = Path(source)
    if not path.is_dir():
        return [source]
    files = sorted(path.glob("*.jsonl"))
    if not files:
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and (p.suffix in {".json", ".jsonl"} or p.name == "README.md")
        )
    return [str(p) for p in sorted(files, key=lambda p: (_ORDER.get(p.name, 1), str(p)))]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceFormatError(path, "no such file or directory") from None
    except UnicodeDecodeError as exc:
        raise SourceFormatError(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SourceFormatError(path, f"cannot read ({exc.strerror})") from None


async def load_text(store: IntelStore, text: str, name: str, rep: SourceReport, bar: ProgressBar) -> None:
    """Parse ``text`` (format detected) and write its incidents and address links in batches.

    Raises:
        SourceFormatError: the text is in no supported format.
    """
    kind, items = parse_source(text, name)
    rep.format = kind
    incidents: list[Incident] = []
    links: list[AddressLink] = []
    try:
        for item in items:
            if isinstance(item, SourceFormatError):
                rep.errors.append(str(item))
            elif isinstance(item, Incident):
                incidents.append(item)
            else:
                links.append(item)
    except SourceFormatError as exc:  # a fault that stops the parse (broken JSON array)
        rep.errors.append(str(exc))
    total = len(incidents) + len(links)
    label = Path(name).name if not name.startswith("http") else safe_url(name)
    for start in range(0, len(incidents), BATCH):
        counts = await store.apply_incidents(incidents[start : start + BATCH])
        rep.added += counts.added
        rep.updated += counts.updated
        rep.skipped += counts.skipped
        bar.update(label, min(start + BATCH, len(incidents)), total)
    for start in range(0, len(links), BATCH):
        counts = await store.apply_addresses(links[start : start + BATCH])
        rep.addresses_added += counts.added
        rep.addresses_skipped += counts.skipped
        bar.update(label, len(incidents) + min(start + BATCH, len(links)), total)


async def ingest_sources(store: IntelStore, sources: list[str], *, progress: TextIO | None = None) -> IngestReport:
    """Load every source into ``store`` and relink incident groups.

    Raises:
        SourceFetchError: a URL could not be fetched (after the other sources loaded; ``.report``).
    """
    report = IngestReport()
    bar = ProgressBar(progress)
    failed: list[str] = []
    for source in sources:
        names = expand_source(source)
        if not names:
            report.sources.append(
                SourceReport(source, errors=[f"{source}: no ingestible files (*.json, *.jsonl or README.md)"])
            )
        for name in names:
            rep = SourceReport(safe_url(name) if name.startswith(("http://", "https://")) else name)
            report.sources.append(rep)
            is_url = name.startswith(("http://", "https://"))
            try:
                if is_url:
                    fetched = await fetch(name)
                    await load_text(store, fetched.text or "", name, rep, bar)
                    await store.record_source_ok(name, fetched.validators, iso_utc(utc_now()), changed=True)
                else:
                    await load_text(store, _read(name), name, rep, bar)
            except SourceFetchError as exc:
                rep.errors.append(str(exc))
                failed.append(str(exc))
                await store.record_source_error(name, str(exc), iso_utc(utc_now()))
            except SourceFormatError as exc:
                rep.errors.append(str(exc))
            bar.finish()
    if await store.needs_relink():  # this ingest's reports, or those of one that stopped before relinking
        await store.relink()
    report.incidents_total = await store.incident_count()
    report.incident_groups = await store.group_count()
    if not failed and report.incidents_total:
        await store.set_data_as_of(iso_utc(utc_now()))
    if failed:
        raise SourceFetchError("could not fetch " + "; ".join(failed), report=report)
    return report


async def ingest_if_empty(
    store: IntelStore, sources: list[str], *, progress: TextIO | None = None
) -> IngestReport | None:
    """Load ``sources`` when the store holds no incident (``serve`` start-up); None when not needed.

    Being offline is not an error here: one warning line says so, and the server runs without data
    (its tools answer with ``NoIncidentDataError``'s instructions).
    """
    if await store.has_incidents():
        return None
    try:
        report = await ingest_sources(store, sources, progress=progress)
    except SourceFetchError as exc:
        logger.warning("Intel data not loaded (offline?): %s; serving without it until `kamiyo-mcp ingest` runs", exc)
        return exc.report if isinstance(exc.report, IngestReport) else None
    logger.info("Intel data loaded: %s reports of %s incidents", report.incidents_total, report.incident_groups)
    return report
