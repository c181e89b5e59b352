"""Compact plain-text tables and values for the tools' text content (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def usd(amount: float | None) -> str:
    """'$1.4B', '$624M', '$920k', '$512', or '—' when unknown."""
    if amount is None:
        return "—"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if amount >= scale:
            text = f"{amount / scale:.1f}".rstrip("0").rstrip(".")
            return f"${text}{suffix}"
    return f"${amount:,.0f}"


def clip(text: str | None, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join((text or "").split()) or "—"
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """A pipe-separated table, each column cut to its width (the last column is never cut)."""
    lines = [" | ".join(header)]
    for row in rows:
        cells = [clip(cell, w) if i < len(row) - 1 else (cell or "—") for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                       strict=True))]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
