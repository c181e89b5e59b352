"""The outbox sender: delivers the mails the store holds, at least once, with retries.

    sender = OutboxSender(store, mail_config, composers=claim_mail_composers(...))
    async with sender.running():        # a background task, in the app's lifespan
        ...
    sent = await sender.send_due()      # or one pass, from a test or a command

Each pass takes the due rows (counting the attempt and moving `next_attempt_at` to the retry time,
which is also a lease), composes each mail in a transaction of its own (its kind's composer
generates any link secret now and stores only its hash: `billing.mail.compose`), sends it over
SMTP with aiosmtplib and marks it sent. A crash between sending and marking sends the mail again
when the lease ends: a possible duplicate (same Message-ID, a link of its own), never a lost mail.
A failed send keeps the row with its error for the next attempt, after an exponential backoff with
jitter. Without SMTP settings the sender does not run and the mails wait in the outbox
(`kamiyo-mcp outbox list`, `kamiyo-mcp outbox print ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable

import aiosmtplib

from billing.background import in_background, sleep_until_woken
from billing.config import MailConfig
from billing.errors import BillingError
from billing.mail.compose import Composed, Composers
from billing.mail.welcome import OutboxMail, to_email_message
from billing.store import Store
from billing.store.outbox_sql import OutboxRow

logger = logging.getLogger(__name__)

BASE_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 3600.0
POLL_SECONDS = 5.0
SMTP_TIMEOUT_SECONDS = 20.0


def retry_delay(attempts: int, *, base: float = BASE_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS,
                rand: Callable[[], float] = random.random) -> float:
    """Seconds before attempt `attempts + 1`: doubling from `base`, capped, with ±25 % jitter."""
    delay = min(base * 2.0 ** max(attempts - 1, 0), cap)
    return delay * (0.75 + 0.5 * rand())


class OutboxSender:
    def __init__(self, store: Store, config: MailConfig, *, clock: Callable[[], float] = time.time,
                 poll_seconds: float = POLL_SECONDS, base_delay: float = BASE_DELAY_SECONDS,
                 max_delay: float = MAX_DELAY_SECONDS, timeout: float = SMTP_TIMEOUT_SECONDS,
                 rand: Callable[[], float] = random.random, composers: Composers | None = None) -> None:
        self.store = store
        self.config = config
        self.composers = composers or Composers()
        self._clock = clock
        self._poll = poll_seconds
        self._base = base_delay
        self._cap = max_delay
        self._timeout = timeout
        self._rand = rand
        self._wake = asyncio.Event()
        self._stopping = False
        self._host = socket.getfqdn() or "kamiyo"

    def wake(self) -> None:
        """Look for due mails now rather than at the next poll."""
        self._wake.set()

    async def send_due(self, *, limit: int = 20) -> int:
        """Send every mail due now; returns how many were sent (none without SMTP settings: they wait)."""
        if not self.config.enabled:
            return 0
        now = int(self._clock())
        # The lease covers the send itself: a retry is never due before the SMTP timeout has passed.
        taken = await self.store.take_due_mail(now, retry_at=lambda attempts: now + max(
            int(retry_delay(attempts, base=self._base, cap=self._cap, rand=self._rand)), int(self._timeout) + 1,
        ), limit=limit)
        sent = 0
        for row in taken:
            if self._stopping:
                break  # its lease ends and it is sent later, by this process's successor or another
            mail = await self.compose(row)
            if mail is None:
                continue
            try:
                await self._send(row, mail)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                logger.warning("outbox: mail %d to %s not sent (attempt %d, next at %d): %s", row.id, row.recipient,
                               row.attempts, row.next_attempt_at, exc)
                await self.store.mark_mail_failed(row.id, f"{type(exc).__name__}: {exc}")
                continue
            await self.store.mark_mail_sent(row.id, now=int(self._clock()), subject=mail.subject)
            logger.info("outbox: mail %d (%s) sent to %s", row.id, row.kind, row.recipient)
            sent += 1
        return sent

    async def compose(self, row: OutboxRow) -> OutboxMail | None:
        """The mail `row` stands for now, or None when it is cancelled or must wait (recorded on the row)."""
        now = int(self._clock())
        try:
            async with self.store.transaction() as db:
                if not await self.store.mail_is_pending(db, row.id):
                    return None  # cancelled (or sent) since it was taken
                composed: Composed = await self.composers.compose(self.store, db, row, now)
        except BillingError as exc:
            logger.warning("outbox: mail %d could not be composed: %s", row.id, exc)
            await self.store.mark_mail_failed(row.id, f"{type(exc).__name__}: {exc}")
            return None
        if composed.cancelled is not None:
            logger.info("outbox: mail %d (%s) to %s cancelled: %s", row.id, row.kind, row.recipient, composed.cancelled)
            await self.store.cancel_mail(row.id, composed.cancelled, now=now)
            return None
        if composed.deferred is not None or composed.mail is None:
            reason = composed.deferred or "nothing to send yet"
            logger.info("outbox: mail %d (%s) waits until %d: %s", row.id, row.kind, row.next_attempt_at, reason)
            await self.store.mark_mail_failed(row.id, reason)
            return None
        return composed.mail

    async def run(self) -> None:
        """Send due mails until cancelled, waking at the next due time, on `wake()` or every poll."""
        while not self._stopping:
            try:
                await self.send_due()
                due = await self.store.next_mail_due()
            except Exception:  # the top of a task: logged, and the loop goes on
                logger.exception("outbox: a sending pass failed")
                due = None
            wait = self._poll if due is None else min(self._poll, max(due - self._clock(), 0.0))
            await sleep_until_woken(self._wake, wait)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OutboxSender]:
        """Run the sender in the background for the block (not at all without SMTP settings)."""
        if not self.config.enabled:
            logger.warning("outbox: SMTP_HOST is unset, mails stay in the outbox (see 'kamiyo-mcp outbox list')")
            yield self
            return
        async with in_background(self.run, self._stop, "kamiyo-outbox-sender"):
            yield self

    def _stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _send(self, row: OutboxRow, mail: OutboxMail) -> None:
        config = self.config
        message = to_email_message(mail, sender=config.email_from, message_id=f"<outbox-{row.id}@{self._host}>",
                                   date=row.created_at)
        implicit_tls = config.smtp_port == 465
        await aiosmtplib.send(
            message, hostname=config.smtp_host, port=config.smtp_port, username=config.smtp_username,
            password=config.smtp_password, use_tls=implicit_tls,
            start_tls=False if implicit_tls else config.smtp_starttls, timeout=self._timeout,
        )
