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

The elicitation id is the link's id (never its code). `UpgradeNotices` is one background task per
process that watches the store for completed links (cross-process: any process may receive the
webhook) and wakes the calls waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp_types import CallToolRequestParams, ElicitRequest, ElicitRequestURLParams, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from billing.background import in_background, sleep_until_woken
from billing.errors import StoreError
from billing.store import Store
from billing.upgrade import IssuedLink

logger = logging.getLogger(__name__)

Mode = Literal["input_required", "elicit", "text"]
INPUT_KEY = "upgrade"
STATE_PREFIX = "kamiyo-upgrade:"
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
    return (f"{reason} Open this page to upgrade your subscription to {link.target_tier} in two clicks (a one-time "
            "link, no sign-in); your request runs once Stripe confirms.")


def input_required(link: IssuedLink, message: str) -> InputRequiredResult:
    """The 2026-07-28 answer: ask for the URL elicitation, and remember which link on the retry."""
    request = ElicitRequest(params=ElicitRequestURLParams(message=message, url=link.url))
    return InputRequiredResult(input_requests={INPUT_KEY: request}, request_state=STATE_PREFIX + link.link_id)


@dataclass(frozen=True, slots=True)
class UpgradeRetry:
    """A 2026-07-28 retry after our URL elicitation: which link, and whether the user went ahead."""

    link_id: str
    accepted: bool


def upgrade_retry(params: CallToolRequestParams) -> UpgradeRetry | None:
    """The retry of a call we answered with `input_required`, or None for any other call."""
    state = params.request_state
    if not state or not state.startswith(STATE_PREFIX):
        return None
    answer = (params.input_responses or {}).get(INPUT_KEY)
    return UpgradeRetry(state.removeprefix(STATE_PREFIX), getattr(answer, "action", None) == "accept")


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
