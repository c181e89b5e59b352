"""Metered overage for the operator.

    kamiyo-mcp overage on  --email E [--cap USD]   the subscription carries the metered price (Stripe)
    kamiyo-mcp overage off --email E               its metered item is removed (what it metered is invoiced)
    kamiyo-mcp usage --email E [--json]            calls today, overage this period, its cost, the cap, what is left

`overage on|off` read the Stripe subscription (the truth, even before a webhook) and change it;
Stripe's `customer.subscription.updated` webhook then records it in the store, like any change made
in Stripe's dashboard or portal.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import TextIO

from billing.errors import ConfigurationError, NotFoundError
from billing.overage import CAP_METADATA_KEY, MAX_CAP_USD, overage_status, overage_terms
from billing.store.meter_sql import OverageAccount
from billing.stripe_gateway import StripeGateway
from kamiyo_mcp.commands import arguments
from kamiyo_mcp.commands.base import iso, run
from kamiyo_mcp.runtime import Runtime

DAY = 86_400
WEBHOOK_NOTE = "in force when Stripe's customer.subscription.updated webhook arrives (seconds)"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    overage = commands.add_parser(
        "overage", help="turn a customer's metered overage on or off (in Stripe)",
        description="Turn a customer's metered overage on or off: the Stripe subscription gains or loses the metered "
                    "price (STRIPE_PRICE_MCP_OVERAGE); its webhook records the change.")
    actions = overage.add_subparsers(dest="overage_command", metavar="ACTION", required=True)
    on = actions.add_parser(
        "on", help="add the metered overage price to the customer's subscription",
        description="Add the metered overage price to the customer's latest Stripe subscription, so calls past the "
                    "daily quota keep working and are billed; --cap lowers the spend cap per billing period.")
    on.add_argument("--email", required=True, type=arguments.email)
    on.add_argument("--cap", type=cap_usd, metavar="USD", help="lower the spend cap per billing period (whole dollars)")
    on.set_defaults(handler=run(_overage_on))
    off = actions.add_parser(
        "off", help="remove the metered overage price (overage so far is invoiced)",
        description="Remove the metered overage item from the customer's subscription; the overage metered so far "
                    "is invoiced, and calls past the daily quota are refused again.")
    off.add_argument("--email", required=True, type=arguments.email)
    off.set_defaults(handler=run(_overage_off))

    usage = commands.add_parser(
        "usage", help="a customer's calls today and overage this billing period",
        description="A customer's calls today, overage calls and their estimated cost this billing period, the spend "
                    "cap and what is left, and the meter events sent, pending or failed.")
    usage.add_argument("--email", required=True, type=arguments.email)
    usage.add_argument("--json", action="store_true", help="one JSON object on stdout")
    usage.set_defaults(handler=run(_usage))


def cap_usd(value: str) -> int:
    """A spend cap in whole dollars (a usage error otherwise)."""
    try:
        dollars = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of dollars: {value!r}") from None
    if not 0 <= dollars <= MAX_CAP_USD:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_CAP_USD} (got {dollars})")
    return dollars


async def _account(runtime: Runtime, email: str) -> OverageAccount:
    account = await runtime.store.overage_account(email)
    if account is None:
        raise NotFoundError(f"no Stripe subscription for {email} (operator grants have no overage)")
    return account


def _gateway(runtime: Runtime) -> StripeGateway:
    billing = runtime.settings.billing
    if not billing.overage_enabled or billing.stripe_secret_key is None:
        raise ConfigurationError("overage is not configured: set STRIPE_SECRET_KEY, STRIPE_PRICE_MCP_OVERAGE and "
                                 "STRIPE_METER_EVENT_NAME")
    return StripeGateway(billing.stripe_secret_key, billing.stripe_api_base)


async def _live_item(runtime: Runtime, gateway: StripeGateway, account: OverageAccount) -> str | None:
    """The metered overage item the Stripe subscription carries now (the store may not know yet)."""
    subscription = await gateway.retrieve_subscription(account.subscription_id)
    return overage_terms(subscription, runtime.settings.billing.overage_price).item_id


async def _overage_on(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    billing = runtime.settings.billing
    account = await _account(runtime, args.email)
    tier = billing.tiers.get(account.tier)
    if tier is None or not tier.overage:
        raise ConfigurationError(f"the {account.tier} tier has no metered overage (see KAMIYO_TIERS_FILE)")
    if args.cap is not None and args.cap > tier.overage_cap_usd:
        raise ConfigurationError(f"--cap must be from 0 to the operator's default of ${tier.overage_cap_usd:,}")
    async with _gateway(runtime) as gateway:
        if args.cap is not None:
            await gateway.set_subscription_metadata(account.subscription_id, {CAP_METADATA_KEY: str(args.cap)})
        # Stripe is the truth: a change whose webhook has not arrived yet is not made twice.
        if await _live_item(runtime, gateway, account) is None:
            assert billing.overage_price is not None
            await gateway.add_subscription_item(account.subscription_id, billing.overage_price,
                                                idempotency_key="overage-on-" + uuid.uuid4().hex)
            print(f"overage on for {account.email} (subscription {account.subscription_id}); {WEBHOOK_NOTE}",
                  file=err)
        else:
            print(f"overage was already on for {account.email} (subscription {account.subscription_id})", file=err)
    if args.cap is not None:
        print(f"spend cap set to ${args.cap:,} per billing period; {WEBHOOK_NOTE}", file=err)
    return 0


async def _overage_off(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    account = await _account(runtime, args.email)
    async with _gateway(runtime) as gateway:
        item_id = await _live_item(runtime, gateway, account)
        if item_id is None:
            print(f"overage is already off for {account.email} (subscription {account.subscription_id})", file=err)
            return 0
        await gateway.delete_subscription_item(item_id)
    print(f"overage off for {account.email} (subscription {account.subscription_id}); the overage so far is "
          f"invoiced; {WEBHOOK_NOTE}", file=err)
    return 0


async def _usage(runtime: Runtime, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    billing = runtime.settings.billing
    account = await _account(runtime, args.email)
    tier = billing.tiers.get(account.tier)
    if tier is None:
        raise NotFoundError(f"the subscription's tier {account.tier!r} is not in the tier table")
    now = runtime.authority.now()
    day = now - now % DAY
    metered = await runtime.store.overage_usage(account.subscription_id, account.current_period_end)
    report: dict[str, object] = {
        "email": account.email,
        "subscription_id": account.subscription_id,
        "tier": account.tier,
        "status": account.status,
        "period_end": iso(account.current_period_end),
        "calls_today": await runtime.store.day_calls(account.subscription_id, day),
        "calls_per_day": tier.calls_per_day,
        "overage": overage_status(tier, sold=billing.overage_enabled, opted_in=account.overage_item_id is not None,
                                  customer_cap_cents=account.overage_cap_cents, calls=metered.billable),
        "meter_events": {"pending": metered.pending, "sent": metered.sent, "failed": metered.failed,
                         "not_billed": metered.voided},
    }
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
        return 0
    overage = report["overage"]
    assert isinstance(overage, dict)
    state = "on" if overage["enabled"] else ("off" if overage["available_on_tier"] else "not available")
    lines = [
        f"{account.email}  {account.tier} ({account.status})  subscription {account.subscription_id}",
        f"calls today: {report['calls_today']:,} of {tier.calls_per_day:,}",
        f"overage: {state}; {overage['calls_this_period']:,} call(s) this period, about "
        f"${overage['estimated_cost_usd']:,.2f} (${overage['price_per_1000_calls_usd']:,.2f} per 1,000)",
        f"cap: ${overage['cap_usd']:,.2f} per period, ${overage['cap_left_usd']:,.2f} left "
        f"({overage['calls_left_under_cap']:,} calls){'; REACHED' if overage['cap_reached'] else ''}",
        f"meter events this period: {metered.pending} pending, {metered.sent} sent, {metered.failed} failed, "
        f"{metered.voided} not billed (the call failed)",
        f"period ends: {report['period_end'] or 'unknown'}",
    ]
    print("\n".join(lines), file=out)
    return 0
