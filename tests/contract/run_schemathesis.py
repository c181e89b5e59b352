"""Contract fuzz: schemathesis against a real `kamiyo-mcp serve` on the fake Stripe.

    python -m tests.contract.run_schemathesis [--max-examples 200] [--seed N] [-- extra st args]

Starts the fake Stripe (which checks every request against Stripe's published spec) in this
process, then `kamiyo-mcp serve` on a free port with STRIPE_API_BASE pointing at it and the price
settings, issues operator-grant tokens (one for rotation, which replaces it, one for every other
route), pays one checkout and delivers its signed webhook (so a claim exists), and runs `st run` on
the served /openapi.json: every route of the billing API. Exit status is schemathesis's: non-zero
on any 5xx, any response that breaks the document (status, content type, headers, schema), or a
malformed request that is not refused.
Not a pytest module (CI runs it as a step); needs `pip install schemathesis`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.fakes.fixtures import METER_EVENT_NAME, OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe, FakeStripeServer
from tests.support import webhook_secret

REPO = Path(__file__).resolve().parents[2]
PERSONAL_PRICE = "price_1PgafmB7WZ01zgkW6dKueIc5"
TEAM_PRICE = "price_1PgafmB7WZ01zgkW02Hf9z6c"
# Acceptance of valid-by-schema data depends on this server's settings (allowed redirect origins,
# priced tiers, the token's kind), which a static document cannot express: it is not checked.
EXCLUDED_CHECKS = ("positive_data_acceptance",)
READY_TIMEOUT = 30.0
FUZZ_TIMEOUT = 170.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200, help="test cases per operation (default 200)")
    parser.add_argument("--seed", type=int, help="hypothesis seed, to replay a run")
    parser.add_argument("st_args", nargs="*", help="extra arguments for `st run` (after --)")
    args = parser.parse_args(argv)
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        print("run_schemathesis: schemathesis is not installed (pip install schemathesis)", file=sys.stderr)
        return 2

    stripe = FakeStripeServer()
    fake = stripe.start()
    fake.add_metered_price(OVERAGE_PRICE, METER_EVENT_NAME)  # metered overage is sold: its cap route works
    with tempfile.TemporaryDirectory(prefix="kamiyo-contract-") as work:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", work),
            "KAMIYO_DATABASE_URL": str(Path(work) / "contract.db"),
            "MCP_JWT_SECRET": "contract-fuzz-secret-" + "x" * 40,
            "KAMIYO_PUBLIC_URL": url,
            "KAMIYO_INTEL_SOURCES": "",
            "KAMIYO_LOG_LEVEL": "WARNING",
            "STRIPE_SECRET_KEY": "sk_test_contract_fuzz_0123456789",
            "STRIPE_WEBHOOK_SECRET": webhook_secret("contract_fuzz_0123456789"),
            "STRIPE_API_BASE": fake.base_url,
            "STRIPE_PRICE_MCP_PERSONAL": PERSONAL_PRICE,
            "STRIPE_PRICE_MCP_TEAM": TEAM_PRICE,
            "STRIPE_PRICE_MCP_OVERAGE": OVERAGE_PRICE,
            "STRIPE_METER_EVENT_NAME": METER_EVENT_NAME,
            # The fuzzer is one client sending hundreds of requests to each route; 429 is covered by the tests.
            **{f"KAMIYO_{limit}_RATE_PER_MINUTE": "100000"
               for limit in ("CHECKOUT", "CHECKOUT_LOOKUP", "CLAIM", "ROTATE", "WEBHOOK_UNVERIFIED")},
        }
        token, rotated_token = _issue_token(env), _issue_token(env)
        log_path = Path(work) / "serve.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "kamiyo_mcp", "serve", "--port", str(port)],
                                      env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            status = 1
            if not _wait_ready(server, url):
                print(log_path.read_text(), file=sys.stderr)
                return status
            if httpx.get(url + "/openapi.json", timeout=5).status_code != 200:
                print("run_schemathesis: the server does not serve /openapi.json "
                      "(are the billing routes wired into create_app?)", file=sys.stderr)
                return status
            sessions = _seed_sessions(fake, url, env["STRIPE_WEBHOOK_SECRET"])
            config = _write_config(Path(work), url, sessions, token=token, rotated_token=rotated_token)
            command = [
                st, "--no-color", "--config-file", str(config), "run", url + "/openapi.json",
                "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
                "--phases", "examples,coverage,fuzzing",
                "--max-examples", str(args.max_examples),
                "--request-timeout", "30",
                # One worker: with two, schemathesis' generation once died inside itself (a KeyError in its
                # strategy cache), and one is as fast here (the server is the bottleneck).
                "--workers", "1",
                *(["--seed", str(args.seed)] if args.seed is not None else []),
                *args.st_args,
            ]
            print("run_schemathesis:", " ".join(command), flush=True)
            try:
                status = subprocess.run(command, cwd=work, timeout=FUZZ_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                print(f"run_schemathesis: schemathesis did not finish within {FUZZ_TIMEOUT:.0f} s", file=sys.stderr)
                status = 1
            print(f"run_schemathesis: the fake Stripe answered {len(fake.requests)} requests", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
            stripe.stop()
            log_text = log_path.read_text(errors="replace")
            if "Traceback" in log_text:
                print("run_schemathesis: the server logged a traceback:\n" + log_text, file=sys.stderr)
                status = 1
        return status


def _seed_sessions(fake: FakeStripe, url: str, webhook_secret: str) -> list[str]:
    """Two real Checkout Sessions made through the API, one of them then paid (in the fake) and its
    signed checkout.session.completed delivered, so the server holds a claim for it."""
    ids = []
    for tier in ("personal", "team"):
        response = httpx.post(url + "/api/billing/create-checkout-session", timeout=30, json={
            "tier": tier, "user_email": f"{tier}@example.com",
            "success_url": url + "/billing/success", "cancel_url": url + "/pricing",
        })
        response.raise_for_status()
        ids.append(response.json()["session_id"])
    paid = fake.complete_session(ids[1])
    event = json.loads((REPO / "tests" / "data" / "stripe" / "events" / "checkout.session.completed.json").read_text())
    event.update(id="evt_contract_checkout", created=int(time.time()))
    event["data"] = {"object": paid}
    payload = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(webhook_secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    httpx.post(url + "/api/v1/webhooks/stripe", content=payload, timeout=30, headers={
        "Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}).raise_for_status()
    return ids


def _write_config(work: Path, url: str, session_ids: list[str], *, token: str, rotated_token: str) -> Path:
    """A schemathesis.toml that mixes values this server accepts into the generated ones.

    Random URLs are never on the allowed origins and random session ids never exist, so without
    these most requests would stop at 400/404 before reaching Stripe. The rotation route gets a
    token of its own: its first success replaces it, which must not lock the other routes out.
    """
    redirects = [url + "/billing/success", url + "/pricing?plan=team#top", url + "/"]
    config = work / "schemathesis.toml"
    config.write_text("\n".join([
        f'headers = {{ Authorization = "Bearer {token}" }}',
        "[dictionaries.redirects]",
        f"values = {json.dumps(redirects)}",
        "[dictionaries.sessions]",
        f"values = {json.dumps(session_ids)}",
        "[parameters]",
        '"body.success_url" = { dictionary = "redirects", probability = 0.6 }',
        '"body.cancel_url" = { dictionary = "redirects", probability = 0.6 }',
        '"body.return_url" = { dictionary = "redirects", probability = 0.6 }',
        '"path.session_id" = { dictionary = "sessions", probability = 0.5 }',
        '"body.session_id" = { dictionary = "sessions", probability = 0.5 }',
        "[[operations]]",
        'include-operation-id = "rotateToken"',
        f'headers = {{ Authorization = "Bearer {rotated_token}" }}',
        "",
    ]))
    return config


def _issue_token(env: dict[str, str]) -> str:
    """An operator-grant token (the portal answers it 409: no Stripe customer)."""
    issued = subprocess.run(
        [sys.executable, "-m", "kamiyo_mcp", "token", "issue", "--email", "contract@example.com", "--tier", "team"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    return issued.stdout.strip().splitlines()[-1]


def _wait_ready(server: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            print(f"run_schemathesis: the server exited with {server.returncode}", file=sys.stderr)
            return False
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting process, bounded by the deadline
    print(f"run_schemathesis: the server was not ready within {READY_TIMEOUT:.0f} s", file=sys.stderr)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
