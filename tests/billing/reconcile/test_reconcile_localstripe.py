"""The one-by-one read of a reconciliation against localstripe, a second Stripe implementation.

localstripe cannot list subscriptions by price or events by delivery (see the README), so the run's
listings are tested against the spec-checked fake only. What it does serve is
GET /v1/subscriptions/{id} with the customer expanded, the read a run makes of each stored
subscription that no listing returned: its objects (an old API version: items carry a `plan`, the
period end sits on the subscription) are compared and healed here like the fake's, and its 404 for an
unknown id is understood as "Stripe does not know it".
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import stripe

from billing.access import Denial, Grant
from billing.reconcile.drift import DriftKind, Finding, compare
from billing.reconcile.heal import Healer
from billing.stripe_gateway import StripeGateway
from billing.stripe_reads import StripeReads
from billing.subscription_state import parse_customer, parse_subscription
from billing.webhooks.processor import WebhookProcessor
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.billing.webhooks.test_webhook_localstripe import PLAN, stripe_call, subscribe
from tests.billing.webhooks.webhook_support import SECRET
from tests.support import base_env, mint_token

KEY = "sk_test_12345"
K = DriftKind


@pytest.fixture
async def runtime(tmp_path: Path, localstripe: str) -> AsyncIterator[Runtime]:
    settings = load_settings(base_env(tmp_path / "kamiyo.db", STRIPE_SECRET_KEY=KEY, STRIPE_API_BASE=localstripe,
                                      STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_PRICE_MCP_PERSONAL=PLAN))
    async with Runtime(settings).opened() as opened:
        yield opened


async def read_and_heal(runtime: Runtime, reads: StripeReads, subscription_id: str) -> tuple[DriftKind, ...]:
    """Read the subscription from localstripe, compare it with the store and heal what differs: the kinds."""
    config = runtime.settings.billing
    stored = (await runtime.store.stored_subscriptions([subscription_id])).get(subscription_id)
    with anyio.fail_after(20):
        while True:  # a read in the second of the store's last change cannot win over it: wait for the next
            read = await reads.read_subscription(subscription_id)
            if stored is None or stored.row.last_event_created is None \
                    or read.observed_at > stored.row.last_event_created:
                break
            await anyio.sleep(0.1)  # polling Stripe's clock (its Date header), bounded by fail_after
    assert read.object is not None
    snapshot = parse_subscription(read.object, config)
    customer = parse_customer(read.object.get("customer"))
    kinds = compare(snapshot, customer, stored, int(time.time()))
    finding = Finding.of(read.object, kinds, stored, read.observed_at, snapshot, customer)
    [healed] = await Healer(runtime.store, config, WebhookProcessor(runtime.store, config)).heal([finding])
    assert healed.status == "healed", healed.message
    return kinds


async def test_a_localstripe_subscription_read_one_by_one_is_found_and_healed_until_it_ends(
        localstripe: str, runtime: Runtime) -> None:
    client = stripe.StripeClient(KEY, base_addresses={"api": localstripe}, max_network_retries=0)
    subscription = await subscribe(client, "Local.Read@Example.com")

    async with StripeGateway(KEY, localstripe) as gateway:
        reads = StripeReads(gateway)
        assert (await reads.read_subscription("sub_unknownToLocalstripe")).object is None

        assert await read_and_heal(runtime, reads, subscription.id) == (K.MISSING_HERE, K.ENTITLED_IN_STRIPE)
        stored = (await runtime.store.stored_subscriptions([subscription.id]))[subscription.id]
        assert (stored.row.status, stored.row.tier, stored.email) == ("active", "personal", "local.read@example.com")
        assert stored.row.current_period_end == subscription.current_period_end  # from the old API's top level
        token = await mint_token(runtime, stored.row.user_id, subscription.id, "personal")
        assert isinstance(await runtime.authority.authorize(token, "get_account_status"), Grant)

        await stripe_call(lambda: client.v1.subscriptions.cancel(subscription.id))  # no webhook is registered: lost

        assert await read_and_heal(runtime, reads, subscription.id) == (K.ENDED_IN_STRIPE, K.STATUS)

    refused = await runtime.authority.authorize(token, "get_account_status")
    assert isinstance(refused, Denial) and refused.code == "subscription_ended"
