"""Offering a refusal's upgrade link the way the MCP client can take it.

    mode = prompt_mode(ctx)       # "input_required" | "elicit" | "text"

- 2026-07-28 clients that declare `elicitation.url` get the SDK's multi-round-trip flow: an
  `InputRequiredResult` carrying a URL-mode elicitation and our `request_state` (sealed by the SDK's
  `RequestStateBoundary`); when they retry after the user accepted, the call waits (bounded) for the
  upgrade's webhook and then runs at the new tier.
- 2025-11-25 clients that declare `elicitation.url` (and can take a server request on this call)
  get `elicitation/create` with `mode: "url"`; once the upgrade's webhook has landed they get
  `notifications/elicitation/complete` for that elicitation, and if it lands while the call waits
  (bounded) the call itself runs.
- Every other client gets the link in the tool error's text.

An operator grant's link buys a new subscription through Checkout (`IssuedLink.new_subscription`):
its token comes on the page after payment, and the refused token stays on its grant's tier, so the
words say so and no call waits to run on the refused token once the purchase completes.

A daily-quota refusal of a tier that sells metered overage also offers to turn it on (a link of its
own, `UpgradeLinks.issue_overage`): in the text beside the upgrade, and as the elicitation (it keeps
the tier and costs only what is used), after which the call runs metered.

The elicitation id is the link's id (never its code); `UpgradeNotices` (kamiyo_mcp.upgrade_notices)
waits for links to complete and tells the clients.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ElicitRequest,
    ElicitRequestURLParams,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from billing.access import Denial, DenialCode, Grant
from billing.errors import StoreError
from billing.upgrade import IssuedLink, UpgradeLinks
from kamiyo_mcp.upgrade_notices import WAIT_SECONDS, UpgradeNotices

logger = logging.getLogger(__name__)

Mode = Literal["input_required", "elicit", "text"]
INPUT_KEY = "upgrade"
STATE_PREFIX = "kamiyo-upgrade:"
# The request state of an operator grant's link (Checkout for a new subscription): its retry never runs.
STATE_PREFIX_NEW = "kamiyo-subscribe:"


def prompt_mode(ctx: ServerRequestContext[Any, Any]) -> Mode:
    """How this request's client can be shown a link: as a URL elicitation (either protocol's way) or text."""
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or elicitation.url is None:
        return "text"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "input_required"
    return "elicit" if ctx.session.can_send_request else "text"


def elicitation_message(reason: str, link: IssuedLink) -> str:
    if link.overage:
        return (f"{reason} Open this page to turn on metered overage in two clicks (a one-time link, no sign-in): "
                "calls past the daily quota then keep working, billed per 1,000 up to your spend cap; your request "
                "runs once Stripe confirms.")
    if link.new_subscription:
        return (f"{reason} Open this page to subscribe to the {link.target_tier} tier in two clicks (a one-time "
                "link, no sign-in); the page after payment gives you its token, to use in place of this one.")
    return (f"{reason} Open this page to upgrade your subscription to {link.target_tier} in two clicks (a one-time "
            "link, no sign-in); your request runs once Stripe confirms.")


def input_required(link: IssuedLink, message: str) -> InputRequiredResult:
    """The 2026-07-28 answer: ask for the URL elicitation, and remember which link on the retry."""
    request = ElicitRequest(params=ElicitRequestURLParams(message=message, url=link.url))
    prefix = STATE_PREFIX_NEW if link.new_subscription else STATE_PREFIX
    return InputRequiredResult(input_requests={INPUT_KEY: request}, request_state=prefix + link.link_id)


@dataclass(frozen=True, slots=True)
class UpgradeRetry:
    """A 2026-07-28 retry after our URL elicitation: which link, whether the user went ahead, and
    whether the link bought a new subscription (then the refused token is not upgraded)."""

    link_id: str
    accepted: bool
    new_subscription: bool = False


def upgrade_retry(params: CallToolRequestParams) -> UpgradeRetry | None:
    """The retry of a call we answered with `input_required`, or None for any other call."""
    state = params.request_state or ""
    prefix = next((p for p in (STATE_PREFIX, STATE_PREFIX_NEW) if state.startswith(p)), None)
    if prefix is None:
        return None
    answer = (params.input_responses or {}).get(INPUT_KEY)
    return UpgradeRetry(state.removeprefix(prefix), getattr(answer, "action", None) == "accept",
                        prefix == STATE_PREFIX_NEW)


Readmit = Callable[[], Awaitable[Grant | Denial]]
Refuse = Callable[[str, Denial], CallToolResult]


class UpgradeOffers:
    """Turns a tier or quota refusal into an upgrade: a one-time link, shown the way the client can take it."""

    def __init__(self, links: Callable[[], UpgradeLinks], notices: UpgradeNotices, *,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self._links = links
        self.notices = notices
        self._wait = wait_seconds

    async def answer(self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams, denial: Denial,
                     readmit: Readmit, refuse: Refuse) -> Grant | CallToolResult | InputRequiredResult:
        """What to answer a refused call: a grant when the upgrade went through meanwhile (the call runs),
        else a URL elicitation or the refusal with its link."""
        retry = upgrade_retry(params)
        if retry is not None and retry.new_subscription:
            # A grant's purchase: the call cannot run on this token, whether or not the purchase is done.
            if retry.accepted:
                done = await self.notices.wait(retry.link_id, int(self.notices.now() + self._wait), self._wait)
                return refuse(_bought_sentence(denial, done), denial)
            return refuse(await self._with_link(denial), denial)
        if retry is not None:
            # The client answered our input request: once the upgrade's webhook lands, the call runs.
            if retry.accepted and await self.notices.wait(retry.link_id, int(self.notices.now() + self._wait),
                                                          self._wait):
                decision = await readmit()
                if isinstance(decision, Grant):
                    return decision
                denial = decision
            return refuse(await self._with_link(denial), denial)
        owned = await self._bought_already(denial)
        if owned is not None:
            return refuse(owned, denial)
        offered = await self._offers(denial)
        if not offered:
            return refuse(denial.message, denial)
        text = _offer_text(denial, offered)
        link = offered[0]  # the one elicited: turning overage on where it is offered, else the upgrade
        mode = prompt_mode(ctx)
        if mode == "input_required":
            self.notices.watch(link)
            return input_required(link, elicitation_message(denial.message, link))
        if mode == "elicit":
            try:
                answer = await ctx.session.elicit_url(elicitation_message(denial.message, link), link.url,
                                                      link.link_id, related_request_id=ctx.request_id)
            except (MCPError, RuntimeError, OSError):
                logger.info("upgrade %s: the client could not take the URL elicitation", link.link_id)
                return refuse(text, denial)
            if answer.action == "accept" and link.new_subscription:
                self.notices.watch(link, ctx.session)  # told when the purchase completes; this call cannot run
                return refuse(_bought_sentence(denial, False, link), denial)
            if answer.action == "accept":
                self.notices.watch(link, ctx.session)
                if await self.notices.wait(link.link_id, link.expires_at, self._wait):
                    decision = await readmit()
                    if isinstance(decision, Grant):
                        return decision
                    return refuse(await self._with_link(decision), decision)
                what = "turning overage on" if link.overage else "the upgrade"
                return refuse(f"{denial.message} Finish {what} on the page that opened ({link.url}); once "
                              "Stripe confirms it you will be told, and your request can be retried.", denial)
        return refuse(text, denial)

    @staticmethod
    def may_offer(denial: Denial) -> bool:
        """Whether a refusal could carry a link: a tier above to upgrade to, or a full day (overage)."""
        return denial.upgrade_to is not None or denial.code == DenialCode.DAILY_QUOTA_EXHAUSTED

    async def _offers(self, denial: Denial) -> list[IssuedLink]:
        """The refusal's links: turning metered overage on (a full day, where the tier sells it), then the upgrade."""
        subscription, target = denial.subscription_id, denial.upgrade_to
        if subscription is None:
            return []
        links = self._links()
        offered: list[IssuedLink] = []
        try:
            if denial.code == DenialCode.DAILY_QUOTA_EXHAUSTED:
                overage = await links.issue_overage(subscription)
                offered += [overage] if overage is not None else []
            if target is not None and links.can_offer(target):
                offered.append(await links.issue(subscription, target, reason=str(denial.code)))
        except StoreError:
            logger.exception("could not issue an upgrade link for subscription %s", subscription)
        return offered

    async def _bought_already(self, denial: Denial) -> str | None:
        """The refusal of a grant's call whose user already bought the tier it needs: use that token."""
        if denial.subscription_id is None or denial.upgrade_to is None:
            return None
        try:
            owned = await self._links().bought_already(denial.subscription_id, denial.upgrade_to)
        except StoreError:
            logger.exception("could not read the subscriptions of grant %s", denial.subscription_id)
            return None
        if owned is None:
            return None
        return (f"{denial.message} You already have a {owned} subscription: use its token (shown on the page "
                "after payment) in place of this operator grant's token, then retry your request.")

    async def _with_link(self, denial: Denial) -> str:
        owned = await self._bought_already(denial)
        if owned is not None:
            return owned
        offered = await self._offers(denial)
        return _offer_text(denial, offered) if offered else denial.message


def _offer_text(denial: Denial, offered: list[IssuedLink]) -> str:
    sentences = [_link_sentence(link) for link in offered]
    return " ".join([denial.message, sentences[0], *("Or " + s[0].lower() + s[1:] for s in sentences[1:])])


def _link_sentence(link: IssuedLink) -> str:
    if link.overage:
        return (f"Keep working now: turn on metered overage in two clicks: {link.url} (a one-time link, valid 30 "
                "minutes, no sign-in needed), then retry your request.")
    if link.new_subscription:
        return (f"Subscribe to the {link.target_tier} tier in two clicks: {link.url} (a one-time link, valid 30 "
                "minutes, no sign-in needed). The page after payment shows your new token: use it in place of this "
                "one (this token stays on its current tier), then retry your request.")
    return (f"Upgrade to {link.target_tier} in two clicks: {link.url} (a one-time link, valid 30 minutes, no "
            "sign-in needed), then retry your request.")


def _bought_sentence(denial: Denial, done: bool, link: IssuedLink | None = None) -> str:
    """The refusal of a grant's call after its user went to Checkout: this token cannot run it."""
    if done:
        return (f"{denial.message} Your new subscription is active: use the token from the page after payment "
                "in place of this one, then retry your request.")
    where = f" ({link.url})" if link is not None else ""
    return (f"{denial.message} Finish the purchase on the page that opened{where}; the page after payment shows "
            "your new token. Use it in place of this one, then retry your request.")
