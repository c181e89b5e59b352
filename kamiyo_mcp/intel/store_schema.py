"""The intel tables' numbered migrations (SQL only; applied by ``store.IntelStore.open``).

Every table is prefixed ``intel_``: earlier versions kept them in the billing file, beside its
tables (``store_upgrade`` copies them from there), and an operator may still point both at one
file. A migration is a list of statements run in one transaction with its version bump.
"""

from __future__ import annotations

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE intel_incidents (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            date TEXT NOT NULL,
            protocol TEXT NOT NULL,
            name_key TEXT NOT NULL,
            classification TEXT,
            technique TEXT,
            amount_usd REAL,
            returned_usd REAL,
            source_url TEXT,
            data TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            group_id TEXT,
            is_canonical INTEGER NOT NULL DEFAULT 1,
            group_amount_usd REAL,
            group_chains TEXT NOT NULL DEFAULT '[]',
            ingested_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX intel_incidents_canonical_date ON intel_incidents (is_canonical, date DESC, id)",
        "CREATE INDEX intel_incidents_group ON intel_incidents (group_id)",
        """CREATE TABLE intel_incident_chains (
            incident_id TEXT NOT NULL REFERENCES intel_incidents (id) ON DELETE CASCADE,
            chain TEXT NOT NULL,
            chain_key TEXT NOT NULL,
            PRIMARY KEY (incident_id, chain_key)
        )""",
        """CREATE TABLE intel_group_chains (
            group_id TEXT NOT NULL,
            chain_key TEXT NOT NULL,
            PRIMARY KEY (chain_key, group_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE intel_addresses (
            address TEXT NOT NULL,
            chain TEXT NOT NULL,
            role TEXT NOT NULL,
            incident_id TEXT NOT NULL,
            source TEXT NOT NULL,
            label TEXT,
            PRIMARY KEY (address, chain, role, incident_id)
        )""",
        "CREATE INDEX intel_addresses_incident ON intel_addresses (incident_id)",
        """CREATE VIRTUAL TABLE intel_search USING fts5 (
            group_id UNINDEXED, names, technique, classification, chains,
            tokenize = 'unicode61 remove_diacritics 2'
        )""",
    ],
    2: [
        # Facts about the data as a whole: "data_as_of" (last load or refresh that reached every source).
        "CREATE TABLE intel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # A search's ordered result ids, kept while its caller pages through them.
        """CREATE TABLE intel_pages (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            query TEXT NOT NULL,
            ids TEXT NOT NULL,
            total INTEGER NOT NULL
        )""",
        "CREATE INDEX intel_pages_created ON intel_pages (created_at)",
        # The words the search index knows (for "did you mean" when a search finds nothing).
        "CREATE VIRTUAL TABLE intel_search_vocab USING fts5vocab (intel_search, row)",
        # Per network source: the validators of its last good answer, for conditional requests.
        """CREATE TABLE intel_sources (
            url TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            checked_at TEXT,
            changed_at TEXT,
            error TEXT,
            error_at TEXT
        )""",
    ],
}
