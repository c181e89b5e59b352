"""Whoever can read the database cannot mint a token: private files, no stored secret, nothing lingering."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import asyncpg
import pytest

from billing.claims import claim_hash
from billing.delivery import ClaimRefused, Delivery
from billing.store import AnyStore, SQLiteStore, open_store
from billing.store.migrations import load
from billing.store.pg_connection import numbered
from billing.tokens import TokenCodec
from billing.webhooks.processor import WebhookProcessor
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.settings import load_settings
from tests.billing.http.delivery_harness import Inbox
from tests.fakes.stripe_fake import run_fake_stripe
from tests.paid_flow import TEAM_PRICE, paid_flow_env, run_paid_flow
from tests.support import DATA, JWT_SECRET, ServerProcess

NOW = 1_900_000_000
SESSION = "cs_test_a1LegacySessionIdThatWasStoredInPlainText0123456789abcdefghij"
CODE = "LegacyClaimCodeMailedBeforeVersionFive_0123456789abcdef"
SUB = "sub_legacy_at_rest"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(db: Path) -> list[Path]:
    return sorted(db.parent.glob(db.name + "*"))


def holders(files: list[Path], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(file, secret name) for every secret whose bytes some file holds."""
    return [(file.name, name) for file in files for name, value in secrets.items()
            if value.encode() in file.read_bytes()]


async def test_after_a_paid_flow_no_database_file_holds_a_secret_and_every_file_is_private(
        tmp_path: Path, inbox: Inbox, server_factory: type[ServerProcess]) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # an existing, world-readable directory, as older versions created it
    db = folder / "kamiyo.db"
    with run_fake_stripe() as fake:
        server = server_factory(paid_flow_env(db, fake, inbox.port, KAMIYO_LOG_LEVEL="INFO")).start()
        flow = await run_paid_flow(server, fake, inbox)
        secrets = {name: value for name, value in flow.secrets.items() if name != "jwt secret"}

        running = database_files(db)
        assert {p.name for p in running} >= {"kamiyo.db", "kamiyo.db-wal", "kamiyo.db-shm"}
        assert {p.name: oct(mode(p)) for p in running} == {p.name: "0o600" for p in running}
        assert oct(mode(folder)) == "0o700"
        assert holders(running, secrets) == []
        server.stop()
    assert holders(database_files(db), secrets) == []


async def test_a_new_database_directory_is_created_private_and_the_secret_file_beside_it_too(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "deeper" / "kamiyo.db"
    settings = load_settings({"KAMIYO_DATABASE_URL": str(db), "KAMIYO_INTEL_SOURCES": ""})
    async with Runtime(settings).opened():
        files = database_files(db) + database_files(settings.intel_path)
        assert settings.intel_path in files and settings.intel_path.parent == db.parent
        assert oct(mode(db.parent)) == "0o700"
        assert {p.name: oct(mode(p)) for p in files} == {p.name: "0o600" for p in files}
        assert settings.secret_file in files


async def test_existing_database_files_are_tightened_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    store = await SQLiteStore.open(db)
    await store.close()
    db.chmod(0o644)

    store = await SQLiteStore.open(db)
    try:
        assert {p.name: oct(mode(p)) for p in database_files(db)} == {
            p.name: "0o600" for p in database_files(db)}
    finally:
        await store.close()


def test_a_shared_directory_such_as_tmp_is_never_tightened(tmp_path: Path) -> None:
    from billing.store.private_files import private_directory

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    private_directory(shared)
    assert oct(mode(shared)) == "0o1777"


# ---- a database written by an older version (schema 4) ----------------------------------------

LEGACY_ROWS: list[tuple[str, tuple[object, ...]]] = [
    ("INSERT INTO customers (user_id, email, stripe_customer_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
     ("usr_legacy", "legacy@example.com", "cus_legacy", NOW, NOW)),
    ("INSERT INTO subscriptions (subscription_id, kind, stripe_subscription_id, user_id, tier, status, created_at,"
     " updated_at, last_event_created) VALUES (?, 'stripe', ?, ?, 'team', 'active', ?, ?, ?)",
     (SUB, SUB, "usr_legacy", NOW, NOW, NOW)),
    ("INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)"
     " VALUES (?, ?, 'email_code', ?, ?, ?)", ("clm_legacy_mail", SUB, claim_hash(CODE), NOW + 7 * 86_400, NOW)),
    ("INSERT INTO outbox (kind, recipient, subject, body_text, body_html, subscription_id, created_at,"
     " next_attempt_at) VALUES ('welcome', 'legacy@example.com', 'Welcome to KAMIYO MCP (team)', ?, ?, ?, ?, ?)",
     (f"Get your token: https://k.test/claim?code={CODE}", f'<a href="https://k.test/claim?code={CODE}">',
      SUB, NOW, NOW)),
]


def legacy_checkout_event() -> str:
    event = json.loads((DATA / "stripe" / "events" / "checkout.session.completed.json").read_text())
    session = event["data"]["object"]
    event.update(id="evt_legacy_checkout", created=NOW + 1)
    session.update(id=SESSION, subscription=SUB, customer="cus_legacy", url=f"https://checkout.stripe.com/c/pay/{SESSION}")
    session["metadata"] = {"tier": "team"}
    return json.dumps(event)


async def legacy_database(url: str) -> None:
    """The schema of version 4 with what that version stored in plain text: a mailed code, a session id."""
    statements = [s for m in load("sqlite" if not url.startswith("postgresql") else "postgres")
                  if m.version <= 4 for s in m.statements]
    failed_event = ("INSERT INTO stripe_events (event_id, type, created, livemode, payload, status, attempts,"
                    " last_error, received_at) VALUES (?, 'checkout.session.completed', ?, 0, ?, 'failed', 1, ?, ?)",
                    ("evt_legacy_checkout", NOW + 1, legacy_checkout_event(),
                     "ValueError: boom", NOW + 1))
    rows = [*LEGACY_ROWS, failed_event]
    schema = ("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
              " applied_at BIGINT NOT NULL)")
    versions = [("INSERT INTO schema_migrations VALUES (?, ?, ?)", (v, f"v{v}", NOW)) for v in (1, 2, 3, 4)]
    if url.startswith("postgresql"):
        conn = await asyncpg.connect(url)
        try:
            for statement in (schema, *statements):
                await conn.execute(statement)
            for sql, params in (*versions, *rows):
                await conn.execute(numbered(sql), *params)
        finally:
            await conn.close()
        return
    with sqlite3.connect(url) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in (schema, *statements):
            conn.execute(statement)
        for sql, params in (*versions, *rows):
            conn.execute(sql, params)
    conn.close()


async def test_upgrading_an_old_database_removes_its_plain_secrets_and_replay_still_works(store_url: str) -> None:
    await legacy_database(store_url)
    store: AnyStore = await open_store(store_url)
    try:
        (mail,) = await store.list_outbox(pending_only=True)
        assert CODE not in mail.body_text + mail.body_html  # to be composed, with a new code, when sent
        event = await store.get_event("evt_legacy_checkout")
        assert event is not None and event.payload is not None and SESSION not in event.payload
        if isinstance(store, SQLiteStore):
            assert holders(database_files(Path(store_url)), {"code": CODE, "session": SESSION}) == []

        delivery = Delivery(store, TokenCodec(JWT_SECRET), public_url="https://k.test", support_email="h@k.test",
                            clock=lambda: NOW + 10)
        with pytest.raises(ClaimRefused) as refused:
            await delivery.redeem(claim_code=CODE)
        assert refused.value.refusal.status in (404, 410)

        config = load_settings({"STRIPE_PRICE_MCP_TEAM": TEAM_PRICE, "KAMIYO_PUBLIC_URL": "https://k.test"}).billing
        outcome = await WebhookProcessor(store, config, clock=lambda: NOW + 10).replay("evt_legacy_checkout")
        assert outcome.status == "processed", outcome.message
        issued = await delivery.redeem(session_id=SESSION)  # the success page still works after the replay
        assert issued.subscription_id == SUB
    finally:
        await store.close()
    if not store_url.startswith("postgresql"):
        assert holders(database_files(Path(store_url)), {"code": CODE, "session": SESSION}) == []



async def test_an_existing_secret_file_and_its_directory_are_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    folder.chmod(0o755)
    db = folder / "kamiyo.db"
    settings = load_settings({"KAMIYO_DATABASE_URL": str(db), "KAMIYO_INTEL_SOURCES": ""})
    settings.secret_file.write_text("s" * 48 + "\n")
    settings.secret_file.chmod(0o644)

    async with Runtime(settings).opened():
        pass

    assert oct(mode(folder)) == "0o700" and oct(mode(settings.secret_file)) == "0o600"
