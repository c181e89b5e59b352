"""A test-only server entry: `kamiyo-mcp serve` whose authority reads the time from a file.

    python -m tests.clock_server --port PORT --clock-file PATH      (environment as for `serve`)

Per-minute and per-day windows are then exact in tests that run real server processes: the test
writes a unix time into PATH (`set_clock`) and every process reads the same instant, instead of
racing the wall clock. Only this module, which lives under tests/ and is not installed with the
package, builds an app with another clock: no setting or variable switches it on in production.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from kamiyo_mcp.app import create_app
from kamiyo_mcp.cli import configure_logging, read_environment
from kamiyo_mcp.settings import load_settings


class FileClock:
    """The unix time written in `path`, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: int | None = None
        self._now = 0.0

    def __call__(self) -> float:
        changed = os.stat(self._path).st_mtime_ns
        if changed != self._seen:
            self._now = float(self._path.read_text().strip())
            self._seen = changed
        return self._now


def set_clock(path: Path, now: float) -> None:
    """Set the time every server started with `path` reads (atomically: a reader never sees half of it)."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(repr(now))
    os.replace(partial, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clock-file", type=Path, required=True)
    args = parser.parse_args()
    settings = load_settings(read_environment())
    configure_logging(settings.log_level)
    app = create_app(settings, clock=FileClock(args.clock_file))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=settings.log_level.lower(), access_log=False,
                lifespan="on", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
