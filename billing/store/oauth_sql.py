"""SQL of the OAuth sign-in side: clients, pending authorization requests, sign-in links, entitlements.

`OAuthSQL` is mixed into the store class. Methods taking `db` run inside a write transaction the
caller opened (`store.transaction()`), so a decision and the writes it causes commit together;
the others read outside any transaction or open their own. Secrets arrive already hashed.
"""

from __future__ import annotations

import uuid

from billing.store.connection import Connection, Row, SQLMixin
from billing.store.oauth_records import (
    ClientSummary,
    Entitlement,
    PendingRequest,
    ReservedLink,
    SignInLink,
    StoredClient,
)

# Dynamically registered clients that never got a grant are forgotten after this long.
UNUSED_CLIENT_SECONDS = 30 * 86_400
# Finished or expired authorization requests (and their links) are kept this long for the audit trail.
REQUEST_RETENTION_SECONDS = 7 * 86_400

_CLIENT_COLUMNS = "client_id, kind, client_name, metadata, secret_hash, created_at, updated_at"
_REQUEST_COLUMNS = ("request_id, client_id, redirect_uri, redirect_uri_explicit, code_challenge, state, scopes,"
                    " resource, created_at, expires_at, email, user_id, subscription_id, session_hash, signed_in_by,"
                    " signed_in_at, completed_at")
_LINK_COLUMNS = "l.link_id, l.link_hash, l.request_id, l.email, l.created_at, l.expires_at, l.used_at"
_ENTITLEMENT_SQL = ("SELECT s.subscription_id, s.user_id, c.email, s.kind, s.tier, s.status, s.current_period_end,"
                    " s.cancel_at_period_end,"
                    " (SELECT MAX(t.expires_at) FROM tokens AS t WHERE t.subscription_id = s.subscription_id"
                    "  AND t.kind <> 'oauth' AND t.revoked_at IS NULL)"
                    " FROM subscriptions AS s JOIN customers AS c ON c.user_id = s.user_id")


class OAuthSQL(SQLMixin):
    """Store operations of OAuth sign-in (mixed into the store class)."""

    # ---- clients ---------------------------------------------------------------------------

    async def oauth_client(self, client_id: str) -> StoredClient | None:
        rows = list(await self._read.execute_fetchall(
            f"SELECT {_CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = ?", (client_id,)))
        return StoredClient(*rows[0]) if rows else None

    async def register_oauth_client(self, client: StoredClient, *, now: int) -> None:
        """Store a dynamically registered client, forgetting registrations that never led to a grant."""
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM oauth_clients WHERE kind = 'registered' AND created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM oauth_grants AS g WHERE g.client_id = oauth_clients.client_id)"
                " AND NOT EXISTS (SELECT 1 FROM oauth_requests AS r WHERE r.client_id = oauth_clients.client_id)",
                (now - UNUSED_CLIENT_SECONDS,))
            await db.execute(
                f"INSERT INTO oauth_clients ({_CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (client.client_id, client.kind, client.client_name, client.metadata, client.secret_hash,
                 client.created_at, client.updated_at))

    async def remember_document_client(self, db: Connection, client_id: str, client_name: str | None, metadata: str, *,
                                       now: int) -> None:
        """Record (or refresh) what a metadata-document client last said about itself."""
        await db.execute(
            f"INSERT INTO oauth_clients ({_CLIENT_COLUMNS}) VALUES (?, 'metadata_document', ?, ?, NULL, ?, ?)"
            " ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name,"
            " metadata = excluded.metadata, updated_at = excluded.updated_at",
            (client_id, client_name, metadata, now, now))

    async def list_oauth_clients(self, *, now: int) -> list[ClientSummary]:
        rows = await self._read.execute_fetchall(
            "SELECT c.client_id, c.kind, c.client_name, c.created_at,"
            " (SELECT COUNT(*) FROM oauth_grants AS g WHERE g.client_id = c.client_id),"
            " (SELECT COUNT(*) FROM oauth_grants AS g WHERE g.client_id = c.client_id AND g.revoked_at IS NULL)"
            " FROM oauth_clients AS c ORDER BY c.created_at, c.client_id")
        return [ClientSummary(str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]

    # ---- authorization requests ------------------------------------------------------------

    async def create_oauth_request(self, request: PendingRequest) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM oauth_requests WHERE expires_at < ?",
                             (request.created_at - REQUEST_RETENTION_SECONDS,))
            await db.execute(
                "INSERT INTO oauth_requests (request_id, client_id, redirect_uri, redirect_uri_explicit,"
                " code_challenge, state, scopes, resource, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.request_id, request.client_id, request.redirect_uri, int(request.redirect_uri_explicit),
                 request.code_challenge, request.state, request.scopes, request.resource, request.created_at,
                 request.expires_at))

    async def oauth_request(self, request_id: str, db: Connection | None = None) -> PendingRequest | None:
        """A pending request (inside `db`'s transaction when given)."""
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(
            f"SELECT {_REQUEST_COLUMNS} FROM oauth_requests WHERE request_id = ?", (request_id,)))
        return _request(rows[0]) if rows else None

    async def sign_in_request(self, db: Connection, request_id: str, *, email: str, user_id: str | None,
                              subscription_id: str | None, session_hash: str, method: str, now: int) -> bool:
        """Bind an open request to the person who proved `email` in the browser `session_hash`."""
        cursor = await db.execute(
            "UPDATE oauth_requests SET email = ?, user_id = ?, subscription_id = ?, session_hash = ?,"
            " signed_in_by = ?, signed_in_at = ? WHERE request_id = ? AND completed_at IS NULL AND expires_at > ?",
            (email, user_id, subscription_id, session_hash, method, now, request_id, now))
        return bool(cursor.rowcount == 1)

    async def set_request_user(self, db: Connection, request_id: str, user_id: str) -> None:
        """Once a signed-in buyer's first payment created their customer, the request knows them by id."""
        await db.execute("UPDATE oauth_requests SET user_id = ? WHERE request_id = ? AND user_id IS NULL",
                         (user_id, request_id))

    async def complete_request(self, db: Connection, request_id: str, *, now: int) -> bool:
        """Close a request (approved or denied); False when it was closed already."""
        cursor = await db.execute(
            "UPDATE oauth_requests SET completed_at = ? WHERE request_id = ? AND completed_at IS NULL",
            (now, request_id))
        return bool(cursor.rowcount == 1)

    # ---- sign-in links ---------------------------------------------------------------------

    async def sign_in_links_since(self, db: Connection, email: str, since: int) -> int:
        rows = list(await db.execute_fetchall(
            "SELECT COUNT(*) FROM oauth_sign_in_links WHERE email = ? AND created_at >= ?", (email, since)))
        return int(rows[0][0])

    async def reserve_sign_in_link(self, db: Connection, *, request_id: str, email: str, now: int,
                                   expires_at: int) -> str:
        """A sign-in link without a secret yet (its mail makes one when it is sent); returns its id."""
        link_id = "lnk_" + uuid.uuid4().hex
        await db.execute(
            "INSERT INTO oauth_sign_in_links (link_id, link_hash, request_id, email, created_at, expires_at)"
            " VALUES (?, NULL, ?, ?, ?, ?)", (link_id, request_id, email, now, expires_at))
        return link_id

    async def reserved_sign_in_link(self, db: Connection, link_id: str) -> ReservedLink | None:
        rows = list(await db.execute_fetchall(
            f"SELECT {_LINK_COLUMNS}, CASE WHEN r.completed_at IS NULL THEN r.expires_at ELSE 0 END"
            " FROM oauth_sign_in_links AS l JOIN oauth_requests AS r ON r.request_id = l.request_id"
            " WHERE l.link_id = ?", (link_id,)))
        if not rows:
            return None
        values = list(rows[0])
        return ReservedLink(SignInLink(*values[:7]), int(values[7]))

    async def seal_sign_in_link(self, db: Connection, link: SignInLink, link_hash: str, *, expires_at: int,
                                now: int) -> None:
        """Give a reserved link the hash of the secret its mail carries now; a mail sent again (the first may
        have arrived) gets a sibling link of its own, so every secret that may have reached the person works."""
        if link.link_hash is None:
            cursor = await db.execute(
                "UPDATE oauth_sign_in_links SET link_hash = ?, expires_at = ? WHERE link_id = ? AND link_hash IS NULL",
                (link_hash, expires_at, link.link_id))
            if cursor.rowcount == 1:
                return
        await db.execute(
            "INSERT INTO oauth_sign_in_links (link_id, link_hash, request_id, email, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ("lnk_" + uuid.uuid4().hex, link_hash, link.request_id, link.email, now, expires_at))

    async def sign_in_link(self, link_hash: str, db: Connection | None = None) -> SignInLink | None:
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(
            f"SELECT {_LINK_COLUMNS} FROM oauth_sign_in_links AS l WHERE l.link_hash = ?", (link_hash,)))
        return SignInLink(*rows[0]) if rows else None

    async def use_sign_in_link(self, db: Connection, link_hash: str, *, now: int) -> bool:
        """Spend a link and every other link of its request; False when it was spent or expired."""
        rows = list(await db.execute_fetchall(
            "UPDATE oauth_sign_in_links SET used_at = ? WHERE link_hash = ? AND used_at IS NULL AND expires_at > ?"
            " RETURNING request_id", (now, link_hash, now)))
        if not rows:
            return False
        await db.execute("UPDATE oauth_sign_in_links SET used_at = ? WHERE request_id = ? AND used_at IS NULL",
                         (now, rows[0][0]))
        return True

    # ---- entitlements ----------------------------------------------------------------------

    async def entitlements_for_email(self, email: str, db: Connection | None = None) -> list[Entitlement]:
        """Every subscription of every customer known by `email` (proven by the caller), newest first."""
        conn: Connection = self._read if db is None else db
        rows = await conn.execute_fetchall(
            _ENTITLEMENT_SQL + " WHERE c.email = ? ORDER BY s.created_at DESC, s.subscription_id", (email,))
        return [_entitlement(row) for row in rows]

    async def stripe_customer_of(self, user_id: str) -> str | None:
        rows = list(await self._read.execute_fetchall(
            "SELECT stripe_customer_id FROM customers WHERE user_id = ?", (user_id,)))
        return str(rows[0][0]) if rows and rows[0][0] else None

    async def entitlements_for_user(self, user_id: str, db: Connection | None = None) -> list[Entitlement]:
        """Every subscription of one customer, newest first."""
        conn: Connection = self._read if db is None else db
        rows = await conn.execute_fetchall(
            _ENTITLEMENT_SQL + " WHERE s.user_id = ? ORDER BY s.created_at DESC, s.subscription_id", (user_id,))
        return [_entitlement(row) for row in rows]

    async def entitlement(self, subscription_id: str, db: Connection | None = None) -> Entitlement | None:
        conn: Connection = self._read if db is None else db
        rows = list(await conn.execute_fetchall(_ENTITLEMENT_SQL + " WHERE s.subscription_id = ?",
                                                (subscription_id,)))
        return _entitlement(rows[0]) if rows else None


def _request(row: Row) -> PendingRequest:
    values = list(row)
    values[3] = bool(values[3])
    return PendingRequest(*values)


def _entitlement(row: Row) -> Entitlement:
    values = list(row)
    values[7] = bool(values[7])
    return Entitlement(*values)
