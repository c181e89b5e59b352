"""SQL of OAuth grants: authorization codes, grants, refresh-token families and OAuth access-token rows.

`OAuthGrantSQL` is mixed into the store class. The token endpoint's decisions run inside one write
transaction the provider opens (`store.transaction()`): it reads with these methods, decides
(billing/oauth/provider.py), then writes with them, so two requests presenting the same code or
refresh token cannot both succeed. An access token is a `tokens` row (kind 'oauth'), which the one
admit-and-count statement judges like any other; ending a grant revokes those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.errors import NotFoundError
from billing.store.connection import Connection, SQLMixin
from billing.store.oauth_records import AccessRow, GrantSummary, StoredCode, StoredGrant, StoredRefresh
from billing.store.records import AuditEntry, NewToken

_CODE_COLUMNS = ("code_hash, client_id, user_id, subscription_id, redirect_uri, redirect_uri_explicit,"
                 " code_challenge, scopes, resource, created_at, expires_at, used_at, grant_id")
_GRANT_COLUMNS = ("grant_id, client_id, user_id, subscription_id, scopes, resource, created_at, refreshed_at,"
                  " revoked_at, revoked_reason")


class OAuthGrantSQL(SQLMixin):
    """Store operations of OAuth grants (mixed into the store class)."""

    if TYPE_CHECKING:
        async def _audit(self, db: Connection, entry: AuditEntry, *, now: int) -> None: ...

    # ---- codes -----------------------------------------------------------------------------

    async def insert_oauth_code(self, db: Connection, code: StoredCode) -> None:
        """A new code (and codes that expired a day ago dropped: a replay of one is refused as unknown)."""
        await db.execute("DELETE FROM oauth_codes WHERE expires_at < ?", (code.created_at - 86_400,))
        await db.execute(
            f"INSERT INTO oauth_codes ({_CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (code.code_hash, code.client_id, code.user_id, code.subscription_id, code.redirect_uri,
             int(code.redirect_uri_explicit), code.code_challenge, code.scopes, code.resource, code.created_at,
             code.expires_at))

    async def oauth_code(self, code_hash: str, db: Connection | None = None) -> StoredCode | None:
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(
            f"SELECT {_CODE_COLUMNS} FROM oauth_codes WHERE code_hash = ?", (code_hash,)))
        if not rows:
            return None
        values = list(rows[0])
        values[5] = bool(values[5])
        return StoredCode(*values)

    async def spend_oauth_code(self, db: Connection, code_hash: str, grant_id: str, *, now: int) -> bool:
        cursor = await db.execute(
            "UPDATE oauth_codes SET used_at = ?, grant_id = ? WHERE code_hash = ? AND used_at IS NULL",
            (now, grant_id, code_hash))
        return bool(cursor.rowcount == 1)

    # ---- grants ----------------------------------------------------------------------------

    async def insert_oauth_grant(self, db: Connection, grant: StoredGrant) -> None:
        await db.execute(
            f"INSERT INTO oauth_grants ({_GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
            (grant.grant_id, grant.client_id, grant.user_id, grant.subscription_id, grant.scopes, grant.resource,
             grant.created_at))

    async def oauth_grant(self, grant_id: str, db: Connection | None = None) -> StoredGrant | None:
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(
            f"SELECT {_GRANT_COLUMNS} FROM oauth_grants WHERE grant_id = ?", (grant_id,)))
        return StoredGrant(*rows[0]) if rows else None

    async def end_oauth_grant(self, db: Connection, grant_id: str, reason: str, *, now: int) -> int:
        """Revoke a grant, its refresh tokens and its live access tokens; returns access tokens revoked."""
        await db.execute(
            "UPDATE oauth_grants SET revoked_at = ?, revoked_reason = ? WHERE grant_id = ? AND revoked_at IS NULL",
            (now, reason, grant_id))
        await db.execute(
            "UPDATE oauth_refresh_tokens SET used_at = ? WHERE grant_id = ? AND used_at IS NULL", (now, grant_id))
        cursor = await db.execute(
            "UPDATE tokens SET revoked_at = ?, revoked_reason = ? WHERE oauth_grant_id = ? AND revoked_at IS NULL",
            (now, reason, grant_id))
        return max(int(cursor.rowcount), 0)

    async def revoke_oauth_grant(self, grant_id: str, reason: str, *, now: int, audit: AuditEntry) -> bool:
        """End a grant (operator or client); False when it was already ended.

        Raises:
            NotFoundError: no such grant.
        """
        async with self.transaction() as db:
            grant = await self.oauth_grant(grant_id, db)
            if grant is None:
                raise NotFoundError(f"no OAuth grant {grant_id}")
            if grant.revoked_at is not None:
                return False
            revoked = await self.end_oauth_grant(db, grant_id, reason, now=now)
            await self._audit(db, AuditEntry(audit.actor, audit.action, audit.subject,
                                             f"{audit.detail or reason}; access tokens revoked={revoked}"), now=now)
            return True

    async def touch_oauth_grant(self, db: Connection, grant_id: str, *, now: int) -> None:
        await db.execute("UPDATE oauth_grants SET refreshed_at = ? WHERE grant_id = ?", (now, grant_id))

    async def list_oauth_grants(self, email: str | None = None, *, now: int) -> list[GrantSummary]:
        where = " WHERE c.email = ?" if email is not None else ""
        params: tuple[object, ...] = (now, email) if email is not None else (now,)
        rows = await self._read.execute_fetchall(
            "SELECT g.grant_id, g.client_id, k.client_name, c.email, g.subscription_id, s.tier, s.status,"
            " g.created_at, g.refreshed_at, g.revoked_at, g.revoked_reason,"
            " (SELECT COUNT(*) FROM tokens AS t WHERE t.oauth_grant_id = g.grant_id AND t.revoked_at IS NULL"
            "  AND t.expires_at > ?)"
            " FROM oauth_grants AS g JOIN customers AS c ON c.user_id = g.user_id"
            " JOIN subscriptions AS s ON s.subscription_id = g.subscription_id"
            " LEFT JOIN oauth_clients AS k ON k.client_id = g.client_id"
            f"{where} ORDER BY g.created_at, g.grant_id", params)
        return [GrantSummary(*row) for row in rows]

    # ---- refresh tokens and access-token rows ----------------------------------------------

    async def insert_oauth_refresh(self, db: Connection, refresh: StoredRefresh) -> None:
        """The family's next refresh token (its spent, expired ones dropped: they could never be used again)."""
        await db.execute("DELETE FROM oauth_refresh_tokens WHERE grant_id = ? AND used_at IS NOT NULL"
                         " AND expires_at < ?", (refresh.grant_id, refresh.created_at))
        await db.execute(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (refresh.token_hash, refresh.grant_id, refresh.created_at, refresh.expires_at))

    async def oauth_refresh(self, token_hash: str, db: Connection | None = None
                            ) -> tuple[StoredRefresh, StoredGrant] | None:
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(
            "SELECT r.token_hash, r.grant_id, r.created_at, r.expires_at, r.used_at,"
            f" {', '.join('g.' + c.strip() for c in _GRANT_COLUMNS.split(','))}"
            " FROM oauth_refresh_tokens AS r JOIN oauth_grants AS g ON g.grant_id = r.grant_id"
            " WHERE r.token_hash = ?", (token_hash,)))
        if not rows:
            return None
        row = list(rows[0])
        return StoredRefresh(*row[:5]), StoredGrant(*row[5:])

    async def spend_oauth_refresh(self, db: Connection, token_hash: str, *, now: int) -> bool:
        cursor = await db.execute(
            "UPDATE oauth_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", (now, token_hash))
        return bool(cursor.rowcount == 1)

    async def insert_oauth_access(self, db: Connection, token: NewToken, grant_id: str, *, now: int) -> None:
        """An access token's row (and the grant's expired ones dropped: they can never authenticate again)."""
        await db.execute(
            "DELETE FROM tokens WHERE oauth_grant_id = ? AND kind = 'oauth' AND expires_at < ?", (grant_id, now))
        await db.execute(
            "INSERT INTO tokens (token_id, user_id, subscription_id, token_hash, created_at, expires_at, kind,"
            " oauth_grant_id) VALUES (?, ?, ?, ?, ?, ?, 'oauth', ?)",
            (token.token_id, token.user_id, token.subscription_id, token.token_hash, token.created_at,
             token.expires_at, grant_id))

    async def oauth_access(self, token_hash: str) -> AccessRow | None:
        rows = list(await self._read.execute_fetchall(
            "SELECT t.token_id, g.grant_id, g.client_id, g.scopes, g.resource, t.expires_at, t.revoked_at"
            " FROM tokens AS t JOIN oauth_grants AS g ON g.grant_id = t.oauth_grant_id"
            " WHERE t.token_hash = ? AND t.kind = 'oauth'", (token_hash,)))
        return AccessRow(*rows[0]) if rows else None
