"""Bulk Stripe reads stay under the rate limit, wait as a 429 says, and are dated in Stripe's clock."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import formatdate

import pytest

from billing.stripe_gateway import StripeGateway, StripeGatewayError
from billing.stripe_pacing import (
    CLOCK_SKEW_MARGIN_SECONDS,
    MAX_RATE_LIMITED_ATTEMPTS,
    Pacer,
    RateLimited,
    observed_at,
    retry_after_seconds,
)
from billing.stripe_reads import StripeReads
from tests.fakes.stripe_fake import FakeStripe, run_fake_stripe

PERSONAL = "price_1PgafmB7WZ01zgkW6dKueIc5"


class VirtualTime:
    """A monotonic clock that only moves when the pacer sleeps: what it waited is exact."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(time: VirtualTime, rate: float = 20) -> Pacer:
    return Pacer(rate, monotonic=time.monotonic, sleep=time.sleep)


async def test_calls_start_no_faster_than_the_rate() -> None:
    time = VirtualTime()
    paced = pacer(time, rate=20)
    starts: list[float] = []

    async def request() -> None:
        starts.append(time.now)

    for _ in range(50):
        await paced.call(request)

    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.05)
    in_any_second = max(sum(1 for s in starts if t <= s < t + 1 - 1e-9) for t in starts)
    assert in_any_second == 20  # below Stripe's 25 per second
    assert paced.calls == 50


async def test_a_429_waits_as_retry_after_says_and_sends_the_request_again() -> None:
    time = VirtualTime()
    paced = pacer(time)
    answers = iter([RateLimited(3.0), RateLimited(None), "page"])

    async def request() -> str:
        answer = next(answers)
        if isinstance(answer, RateLimited):
            raise answer
        return answer

    assert await paced.call(request) == "page"
    assert [round(s, 3) for s in time.sleeps] == [3.0, 2.0]  # Retry-After, then the backoff of a 2nd attempt
    assert (paced.calls, paced.rate_limited) == (3, 2)


async def test_a_429_that_never_ends_gives_up_after_a_bounded_number_of_attempts() -> None:
    time = VirtualTime()
    paced = pacer(time)

    async def request() -> None:
        raise RateLimited(None)

    with pytest.raises(RateLimited):
        await paced.call(request)
    assert paced.rate_limited == MAX_RATE_LIMITED_ATTEMPTS
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_retry_after_is_read_in_seconds_and_garbage_is_ignored() -> None:
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None
    assert retry_after_seconds(None) is None


def test_a_read_is_dated_by_stripes_date_less_the_round_trip() -> None:
    stripe_now = 1_800_000_000
    headers = {"Date": formatdate(stripe_now, usegmt=True)}
    assert observed_at(headers, sent=10.0, received=10.2, wall_clock=lambda: 9e9) == stripe_now - 1
    assert observed_at(headers, sent=10.0, received=10.0, wall_clock=lambda: 9e9) == stripe_now
    assert observed_at(headers, sent=10.0, received=13.5, wall_clock=lambda: 9e9) == stripe_now - 4


def test_without_a_date_header_our_clock_is_used_with_a_margin_for_skew() -> None:
    dated = observed_at({}, sent=10.0, received=10.0, wall_clock=lambda: 1_800_000_000.0)
    assert dated == 1_800_000_000 - CLOCK_SKEW_MARGIN_SECONDS
    assert observed_at({"Date": "not a date"}, sent=0, received=0, wall_clock=lambda: 100.0) == \
        100 - CLOCK_SKEW_MARGIN_SECONDS


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with run_fake_stripe(clock=lambda: 1_700_000_000.0) as fake:
        yield fake


async def test_the_gateway_waits_out_stripes_429_and_dates_the_page_in_stripes_clock(fake: FakeStripe) -> None:
    time = VirtualTime()
    fake.fail_next(429, headers={"Retry-After": "2"})
    async with StripeGateway("sk_test_pacing", fake.base_url) as gateway:
        page = await StripeReads(gateway, pacer=pacer(time)).list_subscriptions(price=PERSONAL)

    assert time.sleeps == [2.0]
    assert [r.path for r in fake.requests] == ["/v1/subscriptions", "/v1/subscriptions"]
    assert page.observed_at in (1_700_000_000 - 1, 1_700_000_000)  # the fake's clock, not ours
    assert len(page.data) == 1


async def test_the_gateway_reports_a_429_that_does_not_end_as_a_stripe_error(fake: FakeStripe) -> None:
    time = VirtualTime()
    fake.fail_next(429, times=MAX_RATE_LIMITED_ATTEMPTS)
    async with StripeGateway("sk_test_pacing", fake.base_url) as gateway:
        with pytest.raises(StripeGatewayError) as raised:
            await StripeReads(gateway, pacer=pacer(time)).list_events(types=["customer.subscription.updated"])
    assert raised.value.http_status == 429 and "rate limited" in raised.value.message


async def test_reading_a_subscription_stripe_does_not_know_is_an_answer_not_an_error(fake: FakeStripe) -> None:
    async with StripeGateway("sk_test_pacing", fake.base_url) as gateway:
        read = await StripeReads(gateway).read_subscription("sub_unknownToStripe")
    assert read.object is None and read.observed_at in (1_700_000_000 - 1, 1_700_000_000)


async def test_by_default_reads_start_below_stripes_25_per_second() -> None:
    time = VirtualTime()
    paced = Pacer(monotonic=time.monotonic, sleep=time.sleep)
    starts: list[float] = []

    async def request() -> None:
        starts.append(time.now)

    for _ in range(100):
        await paced.call(request)

    assert max(sum(1 for s in starts if t <= s < t + 1 - 1e-9) for t in starts) < 25
