"""Buying overage at checkout: the ticked box adds the metered price (no quantity) for tiers that have overage."""

from __future__ import annotations

from pathlib import Path

from tests.billing.http.app_harness import TEAM_PRICE, assert_error_shape, checkout_body, environment, running_app
from tests.fakes.fixtures import METER_EVENT_NAME as EVENT_NAME
from tests.fakes.fixtures import OVERAGE_PRICE
from tests.fakes.stripe_fake import FakeStripe


def overage_env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    fake.add_metered_price(OVERAGE_PRICE, EVENT_NAME)
    return environment(tmp_path, fake, STRIPE_PRICE_MCP_OVERAGE=OVERAGE_PRICE, STRIPE_METER_EVENT_NAME=EVENT_NAME)


async def test_a_team_checkout_with_overage_carries_the_metered_price(tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        answer = await billing.checkout(checkout_body(tier="team", overage=True))
        assert answer.status_code == 200, answer.text
        (request,) = fake.requests_to("POST", "/v1/checkout/sessions")
        assert request.params["line_items"] == [{"price": TEAM_PRICE, "quantity": 1}, {"price": OVERAGE_PRICE}]
        assert (await billing.checkout(checkout_body(tier="team", overage=False))).status_code == 200
        assert fake.requests_to("POST", "/v1/checkout/sessions")[-1].params["line_items"] == [
            {"price": TEAM_PRICE, "quantity": 1}]


async def test_overage_is_refused_where_it_is_not_sold(tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        body = assert_error_shape(await billing.checkout(checkout_body(tier="personal", overage=True)), 400)
        assert body["error"]["code"] == "overage_not_available"
        assert_error_shape(await billing.checkout(checkout_body(tier="team", overage="yes")), 400, "invalid_field")
    async with running_app(environment(tmp_path / "plain", fake), fake) as billing:
        assert_error_shape(await billing.checkout(checkout_body(tier="team", overage=True)), 400,
                           "overage_not_available")
    assert fake.requests_to("POST", "/v1/checkout/sessions") == []


async def test_the_pricing_page_offers_overage_only_where_it_is_sold(tmp_path: Path, fake: FakeStripe) -> None:
    async with running_app(overage_env(tmp_path, fake), fake) as billing:
        html = (await billing.client.get("/pricing")).text
    assert 'data-overage="team"' in html and 'data-overage="enterprise"' in html
    assert 'data-overage="personal"' not in html and "$2.00 per 1,000 calls" in html
    async with running_app(environment(tmp_path / "plain", fake), fake) as billing:
        assert "data-overage" not in (await billing.client.get("/pricing")).text


async def test_the_pricing_page_shows_the_tiers_file(tmp_path: Path, fake: FakeStripe) -> None:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text("[team]\ncalls_per_day = 5\nprice_usd_month = 149\n")
    async with running_app(environment(tmp_path, fake, KAMIYO_TIERS_FILE=str(tiers)), fake) as billing:
        html = (await billing.client.get("/pricing")).text
    assert "120 tool calls per minute, 5 per day" in html and "$149<span>/month" in html
