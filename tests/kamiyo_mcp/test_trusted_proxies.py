"""Whose X-Forwarded-For counts: only KAMIYO_TRUSTED_PROXIES', in a real `kamiyo-mcp serve` (uvicorn)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.billing.http.app_harness import PERSONAL_PRICE, SECRET_KEY
from tests.fakes.stripe_fake import FakeStripe, run_fake_stripe
from tests.support import ServerProcess, base_env


def shop_env(tmp_path: Path, fake: FakeStripe, **extra: str) -> dict[str, str]:
    return base_env(tmp_path / "kamiyo.db", STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_API_BASE=fake.base_url,
                    STRIPE_PRICE_MCP_PERSONAL=PERSONAL_PRICE, KAMIYO_CHECKOUT_RATE_PER_MINUTE="1", **extra)


def checkouts(server: ServerProcess, forwarded_for: list[str]) -> list[int]:
    """One checkout per X-Forwarded-For value, from 127.0.0.1; their statuses."""
    body = {"tier": "personal", "user_email": "buyer@example.com", "success_url": server.url + "/billing/success",
            "cancel_url": server.url + "/pricing"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return [client.post("/api/billing/create-checkout-session", json=body,
                            headers={"X-Forwarded-For": value}).status_code for value in forwarded_for]


def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(
        tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    with run_fake_stripe() as fake:
        server = server_factory(shop_env(tmp_path, fake)).start()
        statuses = checkouts(server, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])

    # One client (127.0.0.1), one checkout a minute: three tries in at most two windows meet a 429.
    assert statuses[0] == 200 and 429 in statuses, statuses


def test_behind_a_trusted_proxy_each_client_has_its_own_window_and_an_ipv6_client_its_64(
        tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    with run_fake_stripe() as fake:
        server = server_factory(shop_env(tmp_path, fake, KAMIYO_TRUSTED_PROXIES="127.0.0.0/8")).start()
        distinct = checkouts(server, ["198.51.100.1", "198.51.100.2", "203.0.113.9, 198.51.100.3",
                                      "2001:db8:1:1::1"])
        same_64 = checkouts(server, ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"])

    assert distinct == [200, 200, 200, 200]  # the last hop before the trusted proxy is the client
    assert same_64[0] == 200 and 429 in same_64, same_64
