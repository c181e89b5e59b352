"""Core store operations: customers, operator grants, tokens and the audit log (portable SQL).

Written against the store's small connection surface (`execute`, `execute_fetchall`, `?`
placeholders) so the same statements run on SQLite and PostgreSQL: `self._read` for reads outside
a transaction, `self.transaction()` for one atomic write.
"""

from __future__ import annotations

from collections.abc import Sequence

from billing.errors import NotFoundError
from billing.store.call_sql import TOKEN_STATE_SQL, token_state
from billing.store.connection import Connection, SQLMixin
from billing.store.records import AuditEntry, NewToken, TokenRow, TokenState

_TOKEN_ROW_SQL = """
SELECT t.token_id, t.user_id, c.email, t.subscription_id, s.tier, s.status, t.created_at,
       t.expires_at, t.revoked_at, t.revoked_reason
FROM tokens AS t
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
JOIN customers AS c ON c.user_id = t.user_id
"""


class CoreSQL(SQLMixin):
    """Mixin of the store classes; they provide `_read` and `transaction()`."""

    async def token_state(self, token_hash: str) -> TokenState | None:
        rows = await self._read.execute_fetchall(TOKEN_STATE_SQL + " WHERE t.token_hash = ?", (token_hash,))
        for row in rows:
            return token_state(row)
        return None

    # ---- customers and entitlements --------------------------------------------------------

    async def find_user_id(self, email: str) -> str | None:
        rows = await self._read.execute_fetchall(
            "SELECT user_id FROM customers WHERE email = ? ORDER BY created_at, user_id LIMIT 1", (email,)
        )
        for row in rows:
            return str(row[0])
        return None

    async def _ensure_customer(self, db: Connection, email: str, user_id: str, *, now: int) -> str:
        """The user id of the customer with `email`, created as `user_id` if there is none."""
        rows = list(await db.execute_fetchall(
            "SELECT user_id FROM customers WHERE email = ? ORDER BY created_at, user_id LIMIT 1", (email,)
        ))
        if rows:
            return str(rows[0][0])
        await db.execute(
            "INSERT INTO customers (user_id, email, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (user_id, email, now, now),
        )
        return user_id

    async def create_grant(self, email: str, tier: str, token: NewToken, *, now: int,
                           audit: AuditEntry) -> str:
        """Create an operator grant and its first token in one transaction; returns the user id."""
        async with self.transaction() as db:
            user_id = await self._ensure_customer(db, email, token.user_id, now=now)
            await db.execute(
                "INSERT INTO subscriptions (subscription_id, kind, user_id, tier, status, created_at,"
                " updated_at) VALUES (?, 'grant', ?, ?, 'active', ?, ?)",
                (token.subscription_id, user_id, tier, now, now),
            )
            await self._insert_token(db, token, user_id=user_id, subscription_id=token.subscription_id)
            await self._audit(db, audit, now=now)
        return user_id

    async def set_subscription_tier(self, subscription_id: str, tier: str, *, now: int,
                                    audit: AuditEntry) -> None:
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE subscriptions SET tier = ?, updated_at = ? WHERE subscription_id = ?",
                (tier, now, subscription_id),
            )
            if cursor.rowcount != 1:
                raise NotFoundError(f"no subscription {subscription_id}")
            await self._audit(db, audit, now=now)

    # ---- tokens ----------------------------------------------------------------------------

    async def get_token(self, token_id: str) -> TokenRow | None:
        rows = await self._read.execute_fetchall(_TOKEN_ROW_SQL + " WHERE t.token_id = ?", (token_id,))
        for row in rows:
            return TokenRow(*row)
        return None

    async def list_tokens(self, email: str | None = None) -> list[TokenRow]:
        if email is None:
            rows = await self._read.execute_fetchall(
                _TOKEN_ROW_SQL + " WHERE t.kind = 'bearer' ORDER BY t.created_at, t.token_id")
        else:
            rows = await self._read.execute_fetchall(
                _TOKEN_ROW_SQL + " WHERE c.email = ? AND t.kind = 'bearer' ORDER BY t.created_at, t.token_id", (email,)
            )
        return [TokenRow(*row) for row in rows]

    async def revoke_token(self, token_id: str, reason: str, *, now: int, audit: AuditEntry) -> bool:
        """Revoke one token; False when it was already revoked.

        Raises:
            NotFoundError: there is no such token.
        """
        async with self.transaction() as db:
            rows = list(await db.execute_fetchall(
                "SELECT revoked_at FROM tokens WHERE token_id = ?", (token_id,)
            ))
            if not rows:
                raise NotFoundError(f"no token {token_id}")
            if rows[0][0] is not None:
                return False
            await db.execute(
                "UPDATE tokens SET revoked_at = ?, revoked_reason = ? WHERE token_id = ?",
                (now, reason, token_id),
            )
            await self._audit(db, audit, now=now)
            for grant_id in await _end_apps_of_a_finished_grant(db, token_id, now=now):
                await self._audit(db, AuditEntry(audit.actor, "oauth.revoke", grant_id, "the operator grant ended"),
                                  now=now)
            return True

    async def rotate_token(self, old_token_id: str, new: NewToken, *, now: int, audit: AuditEntry) -> None:
        """Replace a live token by `new` (same owner and entitlement) in one transaction.

        Raises:
            NotFoundError: no live token `old_token_id`.
        """
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE tokens SET revoked_at = ?, revoked_reason = 'rotated', replaced_by = ?"
                " WHERE token_id = ? AND revoked_at IS NULL AND user_id = ? AND subscription_id = ?"
                " AND kind = 'bearer'",
                (now, new.token_id, old_token_id, new.user_id, new.subscription_id),
            )
            if cursor.rowcount != 1:
                raise NotFoundError(f"no live token {old_token_id}")
            await self._insert_token(db, new, user_id=new.user_id, subscription_id=new.subscription_id)
            await self._audit(db, audit, now=now)

    async def insert_token(self, token: NewToken, *, now: int, audit: AuditEntry) -> None:
        async with self.transaction() as db:
            await self._insert_token(db, token, user_id=token.user_id, subscription_id=token.subscription_id)
            await self._audit(db, audit, now=now)

    async def _insert_token(self, db: Connection, token: NewToken, *, user_id: str,
                            subscription_id: str) -> None:
        await db.execute(
            "INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token.token_id, user_id, subscription_id, token.token_hash, token.created_at, token.expires_at),
        )

    # ---- audit -----------------------------------------------------------------------------

    async def _audit(self, db: Connection, entry: AuditEntry, *, now: int) -> None:
        await db.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (now, entry.actor, entry.action, entry.subject, entry.detail),
        )

    async def audit_entries(self, subject: str | None = None) -> list[dict[str, object]]:
        sql = "SELECT at, actor, action, subject, detail FROM audit_log"
        params: Sequence[object] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            params = (subject,)
        rows = await self._read.execute_fetchall(sql + " ORDER BY id", params)
        keys = ("at", "actor", "action", "subject", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]


async def _end_apps_of_a_finished_grant(db: Connection, token_id: str, *, now: int) -> list[str]:
    """When an operator grant's last live bearer token is revoked, the grant is over: the OAuth
    sign-ins its holder gave apps end with it (their access tokens are refused on the next call,
    their refresh tokens on the next use), as a deleted subscription ends them. Returns their ids."""
    rows = list(await db.execute_fetchall(
        "SELECT s.subscription_id FROM tokens AS t JOIN subscriptions AS s ON s.subscription_id = t.subscription_id"
        " WHERE t.token_id = ? AND t.kind <> 'oauth' AND s.kind = 'grant' AND NOT EXISTS (SELECT 1 FROM tokens AS o"
        "  WHERE o.subscription_id = s.subscription_id AND o.kind <> 'oauth' AND o.revoked_at IS NULL"
        "  AND o.expires_at > ?)", (token_id, now)))
    if not rows:
        return []
    subscription_id, reason = rows[0][0], "the operator grant ended"
    ended = [str(row[0]) for row in await db.execute_fetchall(
        "SELECT grant_id FROM oauth_grants WHERE subscription_id = ? AND revoked_at IS NULL ORDER BY grant_id",
        (subscription_id,))]
    await db.execute("UPDATE oauth_refresh_tokens SET used_at = ? WHERE used_at IS NULL AND grant_id IN"
                     " (SELECT grant_id FROM oauth_grants WHERE subscription_id = ?)", (now, subscription_id))
    await db.execute("UPDATE oauth_grants SET revoked_at = ?, revoked_reason = ? WHERE subscription_id = ?"
                     " AND revoked_at IS NULL", (now, reason, subscription_id))
    await db.execute("UPDATE tokens SET revoked_at = ?, revoked_reason = ? WHERE subscription_id = ? AND kind = 'oauth'"
                     " AND revoked_at IS NULL", (now, reason, subscription_id))
    return ended
