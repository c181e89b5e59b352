"""A one-line terminal progress bar, drawn only when its stream is a terminal."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


def render_bar(label: str, done: int, total: int, width: int = WIDTH) -> str:
    """The text of the bar (pure): ``label [#####.....]  40% 200/500``."""
    fraction = 1.0 if total <= 0 else min(1.0, done / total)
    filled = round(fraction * width)
    return f"{label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {done}/{total}"


class ProgressBar:
    """Redraws one line on ``stream`` when it is a TTY; otherwise does nothing."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream if stream is not None and _isatty(stream) else None
        self._last = ""

    def update(self, label: str, done: int, total: int) -> None:
        if self._stream is None:
            return
        line = render_bar(label, done, total)
        if line != self._last:
            self._stream.write("\r" + line.ljust(len(self._last)))
            self._stream.flush()
            self._last = line

    def finish(self) -> None:
        if self._stream is not None and self._last:
            self._stream.write("\n")
            self._stream.flush()
            self._last = ""


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
