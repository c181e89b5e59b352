"""SQL of upgrade links: one-time links in refusals that upgrade one subscription to one tier.

`UpgradeSQL` is mixed into the store classes. Only the SHA-256 of a link's code is stored; a link
is used once (`use_upgrade_link` is the single-use check: one UPDATE that only an unused, unexpired
link passes), and completed by the webhook that shows its subscription at the target tier
(`complete_upgrade_links`, inside that webhook's transaction; a link that turns metered overage on,
by the one that shows the overage item: `complete_overage_links`), or, for an operator grant's link,
by the `checkout.session.completed` of the Checkout it opened (`complete_bought_upgrade_link`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from billing.store.connection import Connection, Row, SQLMixin

PURGE_AFTER_SECONDS = 7 * 24 * 3600
# The reason of a link that turns metered overage on (its target tier is the subscription's own).
OVERAGE_REASON = "overage_on"

_LINK_SQL = """
SELECT l.link_id, l.subscription_id, l.target_tier, l.reason, l.created_at, l.expires_at, l.used_at,
       l.completed_at, s.kind, s.stripe_subscription_id, c.stripe_customer_id, c.email, s.user_id, s.tier,
       s.status, s.overage_item_id, s.overage_cap_cents
FROM upgrade_links AS l
JOIN subscriptions AS s ON s.subscription_id = l.subscription_id
JOIN customers AS c ON c.user_id = s.user_id
"""


@dataclass(frozen=True, slots=True)
class UpgradeLink:
    """An upgrade link joined with the subscription it upgrades."""

    link_id: str
    subscription_id: str
    target_tier: str
    reason: str
    created_at: int
    expires_at: int
    used_at: int | None
    completed_at: int | None
    kind: str  # "stripe" | "grant"
    stripe_subscription_id: str | None
    stripe_customer_id: str | None
    email: str
    user_id: str
    tier: str
    status: str
    overage_item_id: str | None = None  # the subscription also carries the metered overage price
    overage_cap_cents: int | None = None  # the customer's own spend cap, when set


async def complete_upgrade_links(db: Connection, subscription_id: str, tiers: Sequence[str], *, now: int) -> list[str]:
    """Inside the open transaction `db`: the subscription now has one of `tiers`, so its open links to
    those tiers are done; returns their ids (the elicitations to report complete)."""
    if not tiers:
        return []
    marks = ", ".join("?" for _ in tiers)
    rows = await db.execute_fetchall(
        f"UPDATE upgrade_links SET completed_at = ? WHERE subscription_id = ? AND completed_at IS NULL"
        f" AND target_tier IN ({marks}) AND reason <> ? RETURNING link_id",
        (now, subscription_id, *tiers, OVERAGE_REASON))
    return [str(row[0]) for row in rows]


async def complete_overage_links(db: Connection, subscription_id: str, *, now: int) -> list[str]:
    """Inside the open transaction `db`: the subscription now carries the metered overage item, so its
    open links that turn overage on are done; returns their ids."""
    rows = await db.execute_fetchall(
        "UPDATE upgrade_links SET completed_at = ? WHERE subscription_id = ? AND completed_at IS NULL"
        " AND reason = ? RETURNING link_id", (now, subscription_id, OVERAGE_REASON))
    return [str(row[0]) for row in rows]


async def complete_bought_upgrade_link(db: Connection, link_id: str, user_id: str, tiers: Sequence[str], *,
                                       now: int) -> list[str]:
    """Inside the open transaction `db`: the Checkout opened from link `link_id` (an operator grant's
    upgrade) bought `user_id` a subscription on one of `tiers`; the link is done if it is that
    user's, to one of those tiers. Returns its id (the elicitation to report complete), or nothing."""
    if not tiers:
        return []
    marks = ", ".join("?" for _ in tiers)
    rows = await db.execute_fetchall(
        f"UPDATE upgrade_links SET completed_at = ? WHERE link_id = ? AND completed_at IS NULL"
        f" AND target_tier IN ({marks}) AND subscription_id IN"
        f" (SELECT subscription_id FROM subscriptions WHERE user_id = ?) RETURNING link_id",
        (now, link_id, *tiers, user_id))
    return [str(row[0]) for row in rows]


class UpgradeSQL(SQLMixin):
    """Store operations of upgrade links (mixed into the store classes)."""

    async def create_upgrade_link(self, *, subscription_id: str, target_tier: str, reason: str, code_hash: str,
                                  now: int, expires_at: int) -> str:
        """Store a new link (its code's hash only); returns its id. Links long expired are purged meanwhile."""
        link_id = "upl_" + uuid.uuid4().hex
        async with self.transaction() as db:
            await db.execute("DELETE FROM upgrade_links WHERE expires_at < ?", (now - PURGE_AFTER_SECONDS,))
            await db.execute(
                "INSERT INTO upgrade_links (link_id, code_hash, subscription_id, target_tier, reason, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (link_id, code_hash, subscription_id, target_tier, reason, now, expires_at))
        return link_id

    async def upgrade_link(self, code_hash: str) -> UpgradeLink | None:
        rows = await self._read.execute_fetchall(_LINK_SQL + " WHERE l.code_hash = ?", (code_hash,))
        return _link(rows[0]) if rows else None

    async def use_upgrade_link(self, code_hash: str, *, now: int) -> UpgradeLink | None:
        """Mark an unused, unexpired, uncompleted link used and return it; None when it is not usable."""
        async with self.transaction() as db:
            used = list(await db.execute_fetchall(
                "UPDATE upgrade_links SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND completed_at IS NULL"
                " AND expires_at > ? RETURNING link_id", (now, code_hash, now)))
            if not used:
                return None
            rows = list(await db.execute_fetchall(_LINK_SQL + " WHERE l.link_id = ?", (used[0][0],)))
        return _link(rows[0])

    async def release_upgrade_link(self, link_id: str) -> None:
        """Make a used link usable again (Stripe failed before the customer got anywhere)."""
        async with self.transaction() as db:
            await db.execute("UPDATE upgrade_links SET used_at = NULL WHERE link_id = ? AND completed_at IS NULL",
                             (link_id,))

    async def subscription_for_offer(self, subscription_id: str) -> tuple[str, str, str, str | None] | None:
        """What a refusal's offers depend on: the subscription's kind, tier, status and overage item."""
        rows = await self._read.execute_fetchall(
            "SELECT kind, tier, status, overage_item_id FROM subscriptions WHERE subscription_id = ?",
            (subscription_id,))
        if not rows:
            return None
        kind, tier, status, item = rows[0]
        return str(kind), str(tier), str(status), _str(item)

    async def bought_tiers(self, subscription_id: str) -> list[str]:
        """For an operator grant: the tiers of the Stripe subscriptions in force its user bought (else none)."""
        rows = await self._read.execute_fetchall(
            "SELECT o.tier FROM subscriptions AS g JOIN subscriptions AS o ON o.user_id = g.user_id"
            " WHERE g.subscription_id = ? AND g.kind <> 'stripe' AND o.kind = 'stripe'"
            " AND o.status IN ('active', 'trialing', 'past_due')", (subscription_id,))
        return [str(row[0]) for row in rows]

    async def completed_upgrade_links(self, link_ids: Iterable[str]) -> set[str]:
        """Which of `link_ids` a webhook has completed."""
        ids = list(link_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        rows = await self._read.execute_fetchall(
            f"SELECT link_id FROM upgrade_links WHERE completed_at IS NOT NULL AND link_id IN ({marks})", ids)
        return {str(row[0]) for row in rows}


def _link(row: Row) -> UpgradeLink:
    return UpgradeLink(
        link_id=str(row[0]), subscription_id=str(row[1]), target_tier=str(row[2]), reason=str(row[3]),
        created_at=int(row[4]), expires_at=int(row[5]), used_at=_int(row[6]), completed_at=_int(row[7]),
        kind=str(row[8]), stripe_subscription_id=_str(row[9]), stripe_customer_id=_str(row[10]), email=str(row[11]),
        user_id=str(row[12]), tier=str(row[13]), status=str(row[14]), overage_item_id=_str(row[15]),
        overage_cap_cents=_int(row[16]),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
