"""The incident store: with the other ``store_*`` modules, the only modules that hold SQL.

It lives in a SQLite file of its own (by default beside a SQLite billing file, see
``settings.intel_file_beside``), in ``intel_``-prefixed tables with their own version table
``intel_schema_version``. Each write is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from billing.store.private_files import private_database_file
from billing.store.sqlite_connection import switch_to_wal

from .chains import chain_key
from .dates import utc_now
from .linking import LinkRow, assign_groups
from .names import name_key, name_words
from .records import AddressLink, Incident, merge_incident
from .store_base import DataStamp
from .store_connection import IntelConnection, driver_errors
from .store_pages import StorePages
from .store_reads import StoreReads, from_json
from .store_sources import StoreSources
from .store_upgrade import copy_from_billing_file, migrate

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class WriteCounts:
    added: int = 0
    updated: int = 0
    skipped: int = 0


def _to_json(incident: Incident) -> str:
    return json.dumps({**incident.content(), "related_ids": list(incident.related_ids)}, default=str)


class IntelStore(StoreReads, StorePages, StoreSources):
    """Async access to the intel tables of one SQLite file."""

    def __init__(self, reader: IntelConnection, writer: IntelConnection) -> None:
        super().__init__(reader, writer)
        self._index_lock = asyncio.Lock()
        self._known_chains: tuple[int, dict[str, str]] | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, previous: Path | None = None) -> IntelStore:
        """Open (creating or migrating the intel tables of) the SQLite file at ``path``.

        The file, its WAL and SHM are private (0600), in a directory created private (0700): on a
        fresh host the default one, in the user data directory, does not exist yet. ``previous``:
        the SQLite billing file, where earlier versions kept the intel tables; they are copied
        from there once, when this file has no incident yet (``store_upgrade``).

        Raises:
            IntelStoreError: the directory or file cannot be created, opened, copied into or migrated.
        """
        with driver_errors():
            private_database_file(Path(path))
        writer = await IntelConnection.open(path)
        try:
            await switch_to_wal(writer.execute)  # retried: two processes may create the file at once
            if previous is not None:
                await copy_from_billing_file(writer, previous)
            await migrate(writer)
            reader = await IntelConnection.open(path)
        except BaseException:
            await writer.close()
            raise
        return cls(reader, writer)

    async def close(self) -> None:
        await self._db.close()
        await self._w.close()

    async def schema_version(self) -> int:
        return int(await self._scalar("SELECT MAX(version) FROM intel_schema_version") or 0)

    async def incident_count(self) -> int:
        """Stored reports, all sources (0 means nothing is loaded)."""
        return int(await self._scalar("SELECT COUNT(*) FROM intel_incidents"))

    async def has_incidents(self) -> bool:
        return bool(await self._scalar("SELECT EXISTS (SELECT 1 FROM intel_incidents)"))

    async def group_count(self) -> int:
        """Distinct incidents (incident groups)."""
        return int(await self._scalar("SELECT COUNT(*) FROM intel_incidents WHERE is_canonical = 1"))

    async def address_count(self) -> int:
        return int(await self._scalar("SELECT COUNT(DISTINCT address) FROM intel_addresses"))

    # --- writes -------------------------------------------------------------------------------

    async def apply_incidents(self, incoming: Iterable[Incident]) -> WriteCounts:
        """Insert new reports and merge re-reports (see ``records.merge_incident``), one transaction."""
        batch = list({i.id: i for i in incoming}.values())
        added = updated = skipped = 0
        now = utc_now().isoformat(timespec="seconds")
        async with self._transaction():
            existing: dict[str, tuple[Incident, str]] = {}
            for start in range(0, len(batch), _CHUNK):
                ids = [i.id for i in batch[start : start + _CHUNK]]
                marks = ",".join("?" * len(ids))
                sql = f"SELECT id, data, content_hash FROM intel_incidents WHERE id IN ({marks})"
                existing.update({r[0]: (from_json(r[1]), r[2]) for r in await self._written(sql, ids)})
            for item in batch:
                if item.id in existing:
                    stored, stored_hash = existing[item.id]
                    merged = merge_incident(stored, item)
                    if merged.content_hash() == stored_hash and merged.related_ids == stored.related_ids:
                        skipped += 1
                        continue
                    updated += 1
                    await self._write(merged, now, insert=False)
                else:
                    added += 1
                    await self._write(item, now, insert=True)
            if added or updated:
                await self._bump_generation()
                # Until the next relink these reports are in no incident group and not in the search
                # index; the mark outlives a crash in between, so the next ingest or refresh relinks.
                await self._w.execute("INSERT OR IGNORE INTO intel_meta (key, value) VALUES ('unlinked', '1')")
        return WriteCounts(added, updated, skipped)

    async def _write(self, item: Incident, now: str, *, insert: bool) -> None:
        values = (
            item.source,
            item.date,
            item.protocol,
            name_key(item.protocol),
            item.classification,
            item.technique,
            item.amount_usd,
            item.returned_usd,
            item.source_url,
            _to_json(item),
            item.content_hash(),
        )
        if insert:
            # Not canonical until the relink places it in its incident group: a search made meanwhile
            # never shows a new report of a known incident as a second incident.
            await self._w.execute(
                "INSERT INTO intel_incidents (source, date, protocol, name_key, classification, technique,"
                " amount_usd, returned_usd, source_url, data, content_hash, id, group_id, ingested_at,"
                " updated_at, is_canonical) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
                (*values, item.id, item.id, now, now),
            )
        else:
            await self._w.execute(
                "UPDATE intel_incidents SET source=?, date=?, protocol=?, name_key=?, classification=?,"
                " technique=?, amount_usd=?, returned_usd=?, source_url=?, data=?, content_hash=?,"
                " updated_at=? WHERE id=?",
                (*values, now, item.id),
            )
            await self._w.execute("DELETE FROM intel_incident_chains WHERE incident_id = ?", (item.id,))
        await self._w.executemany(
            "INSERT OR IGNORE INTO intel_incident_chains (incident_id, chain, chain_key) VALUES (?,?,?)",
            [(item.id, c, chain_key(c)) for c in item.chains],
        )

    async def apply_addresses(self, links: Iterable[AddressLink]) -> WriteCounts:
        """Insert address links; a link already stored is skipped."""
        rows = list(dict.fromkeys((a.address, a.chain, a.role, a.incident_id, a.source, a.label) for a in links))
        async with self._transaction():
            before = self._w.total_changes
            await self._w.executemany(
                "INSERT OR IGNORE INTO intel_addresses (address, chain, role, incident_id, source, label)"
                " VALUES (?,?,?,?,?,?)",
                rows,
            )
            added = self._w.total_changes - before
            if added:
                await self._bump_generation()
        return WriteCounts(added=added, skipped=len(rows) - added)

    async def relink(self) -> None:
        """Recompute incident groups, canonical reports, group chains and the search index."""
        async with self._transaction():
            sql = "SELECT id, source, date, protocol, amount_usd, data FROM intel_incidents"
            rows = [(r[0], r[1], r[2], r[3], r[4], from_json(r[5])) for r in await self._written(sql)]
            groups = assign_groups(LinkRow(i, s, d, name_key(p), a, inc.related_ids) for i, s, d, p, a, inc in rows)
            members: dict[str, list[Incident]] = {}
            for row in rows:
                members.setdefault(groups[row[0]].group_id, []).append(row[5])
            updates = []
            for ident, *_ in rows:
                g = groups[ident]
                chains = list(dict.fromkeys(c for m in members[g.group_id] for c in m.chains))
                updates.append((g.group_id, int(g.is_canonical), g.group_amount_usd, json.dumps(chains), ident))
            await self._w.executemany(
                "UPDATE intel_incidents SET group_id=?, is_canonical=?, group_amount_usd=?, group_chains=? WHERE id=?",
                updates,
            )
            await self._w.execute("DELETE FROM intel_group_chains")
            await self._w.execute(
                "INSERT OR IGNORE INTO intel_group_chains (group_id, chain_key) SELECT i.group_id, c.chain_key"
                " FROM intel_incident_chains c JOIN intel_incidents i ON i.id = c.incident_id"
            )
            await self._w.execute("DELETE FROM intel_search")
            await self._w.executemany(
                "INSERT INTO intel_search (group_id, names, technique, classification, chains) VALUES (?,?,?,?,?)",
                [_search_document(gid, group) for gid, group in members.items()],
            )
            await self._w.execute("DELETE FROM intel_meta WHERE key = 'unlinked'")
            await self._bump_generation()

    async def needs_relink(self) -> bool:
        """Whether reports were written since the last ``relink`` (e.g. an ingest stopped before it)."""
        return bool(await self._scalar("SELECT EXISTS (SELECT 1 FROM intel_meta WHERE key = 'unlinked')"))

    # The query reads live in ``store_reads.StoreReads``.

    async def known_chains(self, stamp: DataStamp | None = None) -> dict[str, str]:
        """``chain_key`` → spelling of every chain in the data."""
        version = (stamp or await self.stamp()).generation
        if self._known_chains is None or self._known_chains[0] != version:
            rows = await self._rows("SELECT chain_key, MIN(chain) FROM intel_incident_chains GROUP BY 1")
            self._known_chains = (version, {r[0]: r[1] for r in rows})
        return self._known_chains[1]


def _search_document(group_id: str, group: list[Incident]) -> tuple[str, str, str, str, str]:
    names = {p for m in group for p in (m.protocol, " ".join(name_words(m.protocol)))}
    techniques = {m.technique for m in group if m.technique}
    classes = {m.classification for m in group if m.classification}
    chains = {c for m in group for c in m.chains}
    return (
        group_id,
        " ".join(sorted(names)),
        " ".join(sorted(techniques)),
        " ".join(sorted(classes)),
        " ".join(sorted(chains)),
    )
