"""The read queries of the incident store (SQL; mixed into ``store.IntelStore``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from .chains import chain_key
from .dates import utc_now
from .protocol_index import GroupSummary, ProtocolIndex
from .records import AddressLink, Incident
from .search_spec import SearchSpec
from .store_base import DataStamp, StoreBase

# Windows whose peer scores are computed with the index (the tool's default and round numbers);
# any other window's are computed on its first call of the day and then kept.
WARM_WINDOWS = (7, 30, 90, 180, 365, 730, 1825, 3650)

# bm25 weights of the search index's columns: group_id (not indexed), names, technique,
# classification, chains — a word in a protocol's name counts most.
_WEIGHTS = "0.0, 10.0, 4.0, 2.0, 1.0"
_AMOUNT = "COALESCE(i.amount_usd, i.group_amount_usd)"
_COLUMNS = "i.id, i.data, i.group_id, i.is_canonical, i.group_amount_usd, i.group_chains"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """A stored report with its incident-group fields."""

    incident: Incident
    group_id: str
    is_canonical: bool
    group_amount_usd: float | None
    group_chains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddressHit:
    """An address link with the incident it points at (when that incident is stored)."""

    link: AddressLink
    incident_date: str | None
    protocol: str | None
    group_id: str | None


def from_json(text: str) -> Incident:
    data = json.loads(text)
    core = {
        k: data.pop(k, None)
        for k in (
            "id",
            "source",
            "date",
            "protocol",
            "classification",
            "technique",
            "amount_usd",
            "returned_usd",
            "source_url",
        )
    }
    chains = tuple(data.pop("chains", None) or ())
    related = tuple(data.pop("related_ids", None) or ())
    return Incident(**core, chains=chains, related_ids=related, extra=data)


def _stored(row: Sequence[Any]) -> StoredIncident:
    return StoredIncident(from_json(row[1]), row[2] or row[0], bool(row[3]), row[4], tuple(json.loads(row[5])))


def _search_row(r: Sequence[Any]) -> StoredIncident:
    incident = Incident(
        id=r[0],
        source=r[1],
        date=r[2],
        protocol=r[3],
        chains=tuple(json.loads(r[4] or "[]")),
        classification=r[5],
        technique=r[6],
        amount_usd=r[7],
        returned_usd=r[8],
        source_url=r[9],
    )
    return StoredIncident(incident, r[0], True, r[10], tuple(json.loads(r[11])))


class StoreReads(StoreBase):
    _summaries: tuple[int, list[GroupSummary]] | None = None
    _index: tuple[int, ProtocolIndex] | None = None
    _vocabulary: tuple[int, list[str]] | None = None
    _index_lock: asyncio.Lock

    async def _version(self) -> int:
        return (await self.stamp()).generation

    async def search_ids(self, spec: SearchSpec, limit: int) -> tuple[int, list[str]]:
        """``(total matching, the first ``limit`` canonical report ids in the spec's order)``.

        One row per incident group: a group's id is its canonical report's id, so FTS hits join on
        the primary key. The amount compared and sorted on is the canonical report's, else the group's.
        """
        source = "intel_incidents i"
        where: list[str] = ["i.is_canonical = 1"]
        params: list[Any] = []
        if spec.match:
            # bm25() needs the FTS table as the scanned table: rank in a subquery, then join.
            source = (f"(SELECT group_id, bm25(intel_search, {_WEIGHTS}) AS rank FROM intel_search"
                      " WHERE intel_search MATCH ?) s JOIN intel_incidents i ON i.id = s.group_id")
            params.append(spec.match)
        if spec.chain:
            where.append("EXISTS (SELECT 1 FROM intel_group_chains g WHERE g.chain_key = ? AND g.group_id = i.id)")
            params.append(chain_key(spec.chain))
        for column, op, value in (("i.date", ">=", spec.since), ("i.date", "<=", spec.until),
                                  (_AMOUNT, ">", spec.min_usd), (_AMOUNT, "<", spec.max_usd)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        order = {
            "newest": "i.date DESC, i.id",
            "largest": f"{_AMOUNT} IS NULL, {_AMOUNT} DESC, i.date DESC, i.id",
            "relevance": "s.rank, i.date DESC, i.id" if spec.match else "i.date DESC, i.id",
        }[spec.sort]
        rows = await self._rows(
            f"SELECT i.id, COUNT(*) OVER () FROM {source} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
        return (int(rows[0][1]) if rows else 0), [r[0] for r in rows]

    async def search_rows(self, ids: Sequence[str]) -> dict[str, StoredIncident]:
        """The search-result fields of the given canonical reports (``extra`` left empty), by id."""
        if not ids:
            return {}
        rows = await self._rows(
            "SELECT i.id, i.source, i.date, i.protocol, json_extract(i.data, '$.chains'), i.classification,"
            " i.technique, i.amount_usd, i.returned_usd, i.source_url, i.group_amount_usd, i.group_chains"
            f" FROM intel_incidents i WHERE i.id IN ({','.join('?' * len(ids))})",
            list(ids),
        )
        return {r[0]: _search_row(r) for r in rows}

    async def get_incident(self, incident_id: str) -> StoredIncident | None:
        rows = await self._rows(f"SELECT {_COLUMNS} FROM intel_incidents i WHERE i.id = ?", (incident_id,))
        return _stored(rows[0]) if rows else None

    async def group_members(self, group_id: str) -> list[StoredIncident]:
        """Every report of a group, canonical first."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM intel_incidents i WHERE i.group_id = ?"
            " ORDER BY i.is_canonical DESC, i.source, i.id",
            (group_id,),
        )
        return [_stored(r) for r in rows]

    async def similar_ids(self, text: str, limit: int = 5) -> list[str]:
        """Ids containing ``text`` (for a "did you mean" answer)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._rows(
            "SELECT id FROM intel_incidents WHERE id LIKE ? ESCAPE '\\' ORDER BY date DESC LIMIT ?",
            (pattern, limit),
        )
        return [r[0] for r in rows]

    async def protocol_index(self, stamp: DataStamp | None = None) -> ProtocolIndex:
        """The protocol index of the stored data, rebuilt (off the event loop) only when the data changed."""
        version = (stamp or await self.stamp()).generation
        if self._index is not None and self._index[0] == version:
            return self._index[1]
        async with self._index_lock:
            version = await self._version()
            if self._index is None or self._index[0] != version:
                summaries = await self._group_summaries(version)
                today = utc_now().date()
                index = await anyio.to_thread.run_sync(
                    lambda: ProtocolIndex(summaries, today=today, windows=WARM_WINDOWS)
                )
                self._index = (version, index)
            return self._index[1]

    async def search_vocabulary(self, stamp: DataStamp) -> list[str]:
        """Every word of the search index (cached per data generation)."""
        if self._vocabulary is None or self._vocabulary[0] != stamp.generation:
            rows = await self._rows("SELECT term FROM intel_search_vocab")
            self._vocabulary = (stamp.generation, [r[0] for r in rows])
        return self._vocabulary[1]

    async def group_summaries(self) -> list[GroupSummary]:
        """All incident groups with their members' names and techniques (cached until a write)."""
        return await self._group_summaries(await self._version())

    async def _group_summaries(self, version: int) -> list[GroupSummary]:
        if self._summaries is not None and self._summaries[0] == version:
            return self._summaries[1]
        rows = await self._rows(
            "SELECT i.group_id, i.protocol, i.technique, i.is_canonical, i.date, i.group_amount_usd,"
            " i.group_chains FROM intel_incidents i ORDER BY i.group_id, i.is_canonical DESC"
        )
        groups: dict[str, dict[str, Any]] = {}
        for gid, protocol, technique, canonical, day, amount, chains in rows:
            g = groups.setdefault(gid, {"names": [], "techniques": []})
            g["names"].append(protocol)
            if technique:
                g["techniques"].append(technique)
            if canonical:
                g.update(
                    date=day,
                    protocol=protocol,
                    amount=amount,
                    chains=frozenset(c.casefold() for c in json.loads(chains)),
                )
        summaries = [
            GroupSummary(
                gid,
                g["date"],
                g["protocol"],
                g["amount"],
                g["chains"],
                tuple(dict.fromkeys(g["names"])),
                tuple(dict.fromkeys(g["techniques"])),
            )
            for gid, g in groups.items()
            if "date" in g
        ]
        self._summaries = (version, summaries)
        return summaries

    async def address_hits(self, addresses: Sequence[str], roles: Sequence[str] | None = None) -> list[AddressHit]:
        """Stored links of any of ``addresses`` (optionally only some roles), newest incident first."""
        hits: list[AddressHit] = []
        for start in range(0, len(addresses), _CHUNK):
            chunk = list(addresses[start : start + _CHUNK])
            sql = (
                "SELECT a.address, a.chain, a.role, a.incident_id, a.source, a.label, i.date, i.protocol,"
                " i.group_id FROM intel_addresses a LEFT JOIN intel_incidents i ON i.id = a.incident_id"
                f" WHERE a.address IN ({','.join('?' * len(chunk))})"
            )
            params: list[Any] = chunk
            if roles:
                sql += f" AND a.role IN ({','.join('?' * len(roles))})"
                params = [*chunk, *roles]
            for r in await self._rows(sql, params):
                hits.append(AddressHit(AddressLink(*r[:6]), r[6], r[7], r[8]))
        hits.sort(key=lambda h: (h.incident_date or "", h.link.incident_id), reverse=True)
        return hits

    async def addresses_of(self, incident_ids: Sequence[str]) -> list[AddressLink]:
        """Address links of the given incidents."""
        if not incident_ids:
            return []
        rows = await self._rows(
            "SELECT address, chain, role, incident_id, source, label FROM intel_addresses"
            f" WHERE incident_id IN ({','.join('?' * len(incident_ids))}) ORDER BY incident_id, role, address",
            list(incident_ids),
        )
        return [AddressLink(*r) for r in rows]
