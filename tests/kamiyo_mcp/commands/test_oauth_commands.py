"""`kamiyo-mcp oauth clients|grants|revoke` as an operator runs them, beside a running server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.billing.http.oauth_harness import oauth_app
from tests.support import base_env, cli


async def test_the_operator_lists_clients_and_grants_and_a_revocation_ends_the_apps_access(tmp_path: Path) -> None:
    async with oauth_app(tmp_path) as server:
        client_id, tokens = await server.tokens("operator-view@example.com", "personal")
        env = base_env(tmp_path / "kamiyo.db")

        clients = await asyncio.to_thread(cli, ["oauth", "clients", "--json"], env)
        assert clients.returncode == 0, clients.stderr
        (client,) = json.loads(clients.stdout)
        assert client["client_id"] == client_id and client["name"] == "Test App" and client["live_grants"] == 1

        grants = await asyncio.to_thread(cli, ["oauth", "grants", "--email", "Operator-View@example.com", "--json"],
                                         env)
        (grant,) = json.loads(grants.stdout)
        assert grant["tier"] == "personal" and grant["status"] == "active" and grant["live_access_tokens"] == 1
        assert tokens["access_token"] not in grants.stdout and tokens["refresh_token"] not in grants.stdout

        table = await asyncio.to_thread(cli, ["oauth", "grants"], env)
        assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["GRANT_ID", "CLIENT", "EMAIL"]

        revoked = await asyncio.to_thread(cli, ["oauth", "revoke", grant["grant_id"], "--reason", "lost laptop"], env)
        assert revoked.returncode == 0 and "refused from their next use" in revoked.stderr
        status = (await server.browser.post("/api/mcp/validate", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})).json()
        assert status["revoked"] is True  # this process sees the other process's revocation at once
        refreshed = await server.refresh(tokens["refresh_token"], client_id)
        assert refreshed.status_code == 400 and "lost laptop" in refreshed.json()["error_description"]
        audit = [row for row in await server.runtime.store.audit_entries(grant["grant_id"])
                 if row["action"] == "oauth.revoke"]
        assert audit and audit[0]["actor"] == "cli"

        again = await asyncio.to_thread(cli, ["oauth", "revoke", grant["grant_id"]], env)
        assert again.returncode == 0 and "already revoked" in again.stderr
        unknown = await asyncio.to_thread(cli, ["oauth", "revoke", "ogr_nope"], env)
        assert unknown.returncode == 1 and unknown.stderr.strip() == "kamiyo-mcp: no OAuth grant ogr_nope"
        bad_email = await asyncio.to_thread(cli, ["oauth", "grants", "--email", "not-an-email"], env)
        assert bad_email.returncode in (1, 2) and "not a valid email" in bad_email.stderr


def test_with_nothing_connected_the_lists_say_so(tmp_path: Path) -> None:
    env = base_env(tmp_path / "kamiyo.db")
    for what, empty in (("clients", "no OAuth clients"), ("grants", "no OAuth grants")):
        result = cli(["oauth", what], env)
        assert result.returncode == 0 and result.stdout == "" and empty in result.stderr
        assert json.loads(cli(["oauth", what, "--json"], env).stdout) == []
