"""Test helpers: free ports, the CLI as a subprocess, a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from billing.store.records import AuditEntry, NewToken
from billing.tokens import token_hash
from kamiyo_mcp.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
JWT_SECRET = "test-secret-" + "x" * 40


# Test material carried by the repository (with its provenance and licence files): Stripe's
# fixtures, events and OpenAPI spec, and the real incident data set.
DATA = REPO / "tests" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(db: Path, **extra: str) -> dict[str, str]:
    return {"KAMIYO_DATABASE_URL": str(db), "MCP_JWT_SECRET": JWT_SECRET, "KAMIYO_INTEL_SOURCES": "", **extra}


def cli(args: list[str], env: dict[str, str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m kamiyo_mcp ARGS` with exactly `env` (plus PATH/HOME), like an operator would."""
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.run([sys.executable, "-m", "kamiyo_mcp", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


class ServerProcess:
    """`kamiyo-mcp serve` in a subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], port: int | None = None, *, clock_file: Path | None = None) -> None:
        """`clock_file`: run the test-only entry whose authority reads the time from that file
        (see tests/clock_server.py) instead of `kamiyo-mcp serve`."""
        self.port = port or free_port()
        self.clock_file = clock_file
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                    "KAMIYO_PUBLIC_URL": self.url, **env}
        self.log = Path(env["KAMIYO_DATABASE_URL"]).with_suffix(f".{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(self.port)]
        if self.clock_file is not None:
            command = [sys.executable, "-m", "tests.clock_server", "--port", str(self.port),
                       "--clock-file", str(self.clock_file)]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a starting process, bounded by the deadline
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")




async def mint_token(runtime: Runtime, user_id: str, subscription_id: str, tier: str = "personal") -> str:
    """A new token for an entitlement a test created another way (a webhook, a seeded row).

    What a redeemed claim does in production (billing/delivery.py), without the claim.
    """
    now = runtime.authority.now()
    token, claims = runtime.codec.mint(sub=user_id, tier=tier, sid=subscription_id, now=now,
                                       expires_at=now + 365 * 86_400)
    await runtime.store.insert_token(
        NewToken(claims.jti, user_id, subscription_id, token_hash(token), now, claims.exp), now=now,
        audit=AuditEntry("test", "token.issue", claims.jti, f"subscription={subscription_id}"),
    )
    return token


def webhook_secret(name: str) -> str:
    """A test's Stripe webhook signing secret, built at run time: no secret-shaped literal is committed."""
    return "whsec" + "_" + name
