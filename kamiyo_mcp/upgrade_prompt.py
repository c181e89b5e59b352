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

The elicitation id is the link's id (never its code). `UpgradeNotices` is one background task per
process that watches the store for completed links (cross-process: any process may receive the
webhook) and wakes the calls waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ElicitRequest,
    ElicitRequestURLParams,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from billing.access import Denial, Grant
from billing.background import in_background, sleep_until_woken
from billing.errors import StoreError
from billing.store import Store
from billing.upgrade import IssuedLink, UpgradeLinks

logger = logging.getLogger(__name__)

Mode = Literal["input_required", "elicit", "text"]
INPUT_KEY = "upgrade"
STATE_PREFIX = "kamiyo-upgrade:"
# The request state of an operator grant's link (Checkout for a new subscription): its retry never runs.
STATE_PREFIX_NEW = "kamiyo-subscribe:"
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.5


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


@dataclass(slots=True)
class _Watch:
    expires_at: float
    sessions: list[ServerSession] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class UpgradeNotices:
    """Waits for upgrade links to complete and tells the clients that elicited them."""

    def __init__(self, store: Callable[[], Store], *, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._poll = poll_seconds
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def now(self) -> float:
        return self._clock()

    def watch(self, link: IssuedLink, session: ServerSession | None = None) -> None:
        """Follow `link` until it completes or expires; then notify `session` (an elicitation's client)."""
        watch = self._watches.setdefault(link.link_id, _Watch(float(link.expires_at)))
        if session is not None and session not in watch.sessions:
            watch.sessions.append(session)
        self._wake.set()

    async def wait(self, link_id: str, expires_at: int, seconds: float = WAIT_SECONDS) -> bool:
        """Wait up to `seconds` for the link's webhook; True when it has landed."""
        watch = self._watches.setdefault(link_id, _Watch(float(expires_at)))
        self._wake.set()
        waiting = asyncio.ensure_future(watch.done.wait())
        try:
            # asyncio.wait, not wait_for/timeout: on 3.11 those can swallow the caller's cancellation.
            await asyncio.wait([waiting], timeout=seconds)
        finally:
            waiting.cancel()
        return watch.done.is_set()

    async def check(self) -> None:
        """One look at the store: wake the waiters and notify the clients of every completed link."""
        now = self._clock()
        for link_id, watch in list(self._watches.items()):
            if watch.expires_at < now and not watch.done.is_set():
                del self._watches[link_id]
        pending = [link_id for link_id, watch in self._watches.items() if not watch.done.is_set()]
        if not pending:
            return
        for link_id in await self._store().completed_upgrade_links(pending):
            watch = self._watches.pop(link_id)
            watch.done.set()
            for session in watch.sessions:
                try:
                    await session.send_elicit_complete(link_id)
                except Exception:  # noqa: BLE001 - the client went away; nothing else to tell it
                    logger.info("upgrade %s completed; its client could not be told (disconnected)", link_id)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.check()
            except StoreError:
                logger.exception("upgrade notices: the store could not be read")
            await sleep_until_woken(self._wake, self._poll if self._watches else 3600.0)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[UpgradeNotices]:
        async with in_background(self.run, self._stop, "kamiyo-upgrade-notices"):
            yield self

    def _stop(self) -> None:
        self._stopping = True
        self._wake.set()


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
        link = await self._issue(denial)
        if link is None:
            return refuse(denial.message, denial)
        text = f"{denial.message} {_link_sentence(link)}"
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
                return refuse(f"{denial.message} Finish the upgrade on the page that opened ({link.url}); once "
                              "Stripe confirms it you will be told, and your request can be retried.", denial)
        return refuse(text, denial)

    async def _issue(self, denial: Denial) -> IssuedLink | None:
        target, subscription = denial.upgrade_to, denial.subscription_id
        links = self._links()
        if target is None or subscription is None or not links.can_offer(target):
            return None
        try:
            return await links.issue(subscription, target, reason=str(denial.code))
        except StoreError:
            logger.exception("could not issue an upgrade link for subscription %s", subscription)
            return None

    async def _with_link(self, denial: Denial) -> str:
        link = await self._issue(denial)
        return denial.message if link is None else f"{denial.message} {_link_sentence(link)}"


def _link_sentence(link: IssuedLink) -> str:
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
                "(or the claim link in your email) in place of this one, then retry your request.")
    where = f" ({link.url})" if link is not None else ""
    return (f"{denial.message} Finish the purchase on the page that opened{where}; the page after payment shows "
            "your new token. Use it in place of this one, then retry your request.")
