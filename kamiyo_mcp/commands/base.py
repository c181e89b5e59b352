"""What every operator command shares: an opened runtime and one-line failures."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from billing.errors import BillingError, ConfigurationError
from kamiyo_mcp.intel.errors import IntelError
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import Settings

Command = Callable[[Runtime, argparse.Namespace, TextIO, TextIO], Awaitable[int]]
Handler = Callable[[Settings, argparse.Namespace], int]


def run(command: Command) -> Handler:
    """A CLI handler running `command` with an opened runtime.

    A refused operation exits 1 with one line; an argument the authority finds unusable (e.g. re-tiering
    a Stripe subscription's token) is bad usage, exit 2.
    """

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        async def go() -> int:
            async with Runtime(settings).opened() as runtime:
                return await command(runtime, args, sys.stdout, sys.stderr)

        try:
            return asyncio.run(go())
        except ConfigurationError as exc:
            print(f"kamiyo-mcp: {exc}", file=sys.stderr)
            return 2
        except (BillingError, IntelError) as exc:
            print(f"kamiyo-mcp: {exc}", file=sys.stderr)
            return 1

    return handler


def iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
