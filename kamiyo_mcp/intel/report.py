"""The result of an ingest run: per-source counts and errors, and its human summary (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SourceReport:
    """What one source (a file or URL) contributed."""

    source: str
    format: str | None = None
    added: int = 0
    updated: int = 0
    skipped: int = 0
    addresses_added: int = 0
    addresses_skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IngestReport:
    """Per-source results of ``ingest.ingest_sources``."""

    sources: list[SourceReport] = field(default_factory=list)
    incidents_total: int = 0
    incident_groups: int = 0

    @property
    def errors(self) -> list[str]:
        """Every error of every source, each naming its file (and line where there is one)."""
        return [e for s in self.sources for e in s.errors]

    @property
    def added(self) -> int:
        return sum(s.added for s in self.sources)

    @property
    def updated(self) -> int:
        return sum(s.updated for s in self.sources)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.sources)

    def format(self) -> str:
        """The summary printed at the end of ``kamiyo-mcp ingest``."""
        lines = []
        for s in self.sources:
            kind = f" ({s.format})" if s.format else ""
            line = f"{s.source}{kind}: {s.added} added, {s.updated} updated, {s.skipped} skipped"
            if s.addresses_added or s.addresses_skipped:
                line += f"; addresses {s.addresses_added} added, {s.addresses_skipped} skipped"
            if s.errors:
                line += f"; {len(s.errors)} error{'s' if len(s.errors) != 1 else ''}"
            lines.append(line)
        lines.append(
            f"Total: {self.added} added, {self.updated} updated, {self.skipped} skipped, "
            f"{len(self.errors)} errors. Store holds {self.incidents_total} reports of "
            f"{self.incident_groups} distinct incidents."
        )
        shown = self.errors[:20]
        if shown:
            lines.append("Errors:")
            lines.extend(f"  {e}" for e in shown)
            if len(self.errors) > len(shown):
                lines.append(f"  ... and {len(self.errors) - len(shown)} more")
        return "\n".join(lines)
