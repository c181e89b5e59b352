"""`kamiyo-mcp ingest SOURCE...`: load exploit incidents into the store (idempotent)."""

from __future__ import annotations

import argparse
from typing import TextIO

from kamiyo_mcp.commands.base import run
from kamiyo_mcp.intel.errors import SourceFetchError
from kamiyo_mcp.intel.ingest import ingest_sources
from kamiyo_mcp.runtime import Runtime


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser(
        "ingest", help="load incidents from files, directories or URLs (DeFiLlama, BlockSec, DeFiHackLabs, jsonl)",
        description="Load incidents from files, directories or URLs; the format is detected from the content "
                    "(DeFiLlama /hacks, BlockSec, DeFiHackLabs README lists, exploits.jsonl/addresses.jsonl). "
                    "Idempotent: re-ingesting changes nothing."
    )
    ingest.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a file, a directory such as tests/data/exploits, or https://api.llama.fi/hacks")
    ingest.set_defaults(handler=run(_ingest))


async def _ingest(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        report = await ingest_sources(runtime.intel, list(args.sources), progress=err)
    except SourceFetchError as exc:
        print(f"kamiyo-mcp: {exc}", file=err)
        if exc.report is not None:
            print(exc.report.format(), file=err)
        return 1
    print(report.format(), file=err)
    return 1 if report.errors else 0
