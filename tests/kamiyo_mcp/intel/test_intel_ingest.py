"""Ingestion: formats, idempotency, cross-source linking, errors naming file and line, progress, URLs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiosqlite
import pytest

from kamiyo_mcp.intel.errors import SourceFetchError, SourceFormatError
from kamiyo_mcp.intel.formats import detect_format, parse_source
from kamiyo_mcp.intel.ingest import expand_source, ingest_sources
from kamiyo_mcp.intel.records import Incident
from kamiyo_mcp.intel.store import IntelStore
from kamiyo_mcp.intel.store_schema import MIGRATIONS

from .conftest import LocalServer, canonical_reports, json_body


def _ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines()}


@pytest.mark.parametrize(
    ("relative", "kind", "count"),
    [
        ("raw/defillama/hacks.json", "defillama", 538),
        ("raw/blocksec/all.json", "blocksec", 285),
        ("raw/defihacklabs/README.md", "defihacklabs", 113),
        ("exploits.jsonl", "exploits_jsonl", 1680),
    ],
)
def test_each_format_is_detected_from_content_and_yields_the_normalized_ids(
    shared_dir: Path, relative: str, kind: str, count: int
) -> None:
    detected, items = parse_source((shared_dir / relative).read_text(), relative)
    incidents = [i for i in items if isinstance(i, Incident)]
    assert detected == kind
    assert len(incidents) == count
    assert {i.id for i in incidents} <= _ids(shared_dir / "exploits.jsonl")


def test_all_defihacklabs_readmes_hold_857_entries(shared_dir: Path) -> None:
    files = expand_source(str(shared_dir / "raw" / "defihacklabs"))
    total = sum(sum(isinstance(i, Incident) for i in parse_source(Path(f).read_text(), f)[1]) for f in files)
    assert total == 857


def test_unrecognised_content_is_refused_naming_the_file() -> None:
    with pytest.raises(SourceFormatError, match="notes.txt: unrecognised format"):
        detect_format("just some text", "notes.txt")


def test_the_shared_directory_stands_for_its_jsonl_files_incidents_first(shared_dir: Path) -> None:
    assert [Path(p).name for p in expand_source(str(shared_dir))] == ["exploits.jsonl", "addresses.jsonl"]


async def test_ingesting_the_shared_set_loads_every_report_and_address(loaded_db: Path) -> None:
    store = await IntelStore.open(loaded_db)
    try:
        assert await store.incident_count() == 1680
        assert await store.address_count() == 1947
    finally:
        await store.close()


async def test_reingesting_the_same_source_changes_nothing(empty_store: IntelStore, shared_dir: Path) -> None:
    first = await ingest_sources(empty_store, [str(shared_dir)])
    second = await ingest_sources(empty_store, [str(shared_dir)])
    assert (first.added, second.added, second.updated, second.skipped) == (1680, 0, 0, 1680)
    assert second.sources[1].addresses_added == 0 and second.sources[1].addresses_skipped == 2261
    assert await empty_store.incident_count() == 1680


async def test_raw_sources_and_the_normalized_view_describe_the_same_rows(
    empty_store: IntelStore, shared_dir: Path
) -> None:
    raw = await ingest_sources(empty_store, [str(shared_dir / "raw")])
    assert raw.added == 1680 and not raw.errors
    again = await ingest_sources(empty_store, [str(shared_dir / "raw")])
    assert again.added == again.updated == 0
    normalized = await ingest_sources(empty_store, [str(shared_dir / "exploits.jsonl")])
    assert normalized.added == 0
    assert await empty_store.incident_count() == 1680


async def test_defillama_incidents_are_counted_once_whatever_else_reports_them(store: IntelStore) -> None:
    assert await store.group_count() < 1680
    total, rows = await canonical_reports(store)
    llama = [r for r in rows if r.incident.source == "defillama"]
    assert len(llama) == 538
    assert round(sum(r.incident.amount_usd or 0 for r in llama)) == 16_561_410_634
    assert total == len(rows) == await store.group_count()


async def test_a_malformed_row_is_reported_with_file_and_line_and_the_rest_loads(
    empty_store: IntelStore, shared_dir: Path, tmp_path: Path
) -> None:
    lines = (shared_dir / "exploits.jsonl").read_text().splitlines()[:5]
    lines[2] = lines[2][:40]
    lines[3] = json.dumps({**json.loads(lines[3]), "date": None})
    bad = tmp_path / "exploits.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    report = await ingest_sources(empty_store, [str(bad)])
    assert report.added == 3
    assert [e.split(": ")[0] for e in report.errors] == [f"{bad}:3", f"{bad}:4"]
    assert "invalid JSON" in report.errors[0]
    assert f"{bad}:3" in report.format()


async def test_a_broken_json_file_is_reported_and_other_sources_still_load(
    empty_store: IntelStore, shared_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "hacks.json"
    broken.write_text('[\n {"name": "A", "date": 1700000000, "amount": 1, "chain": []},\n {"name": \n')
    missing = tmp_path / "nope.json"
    report = await ingest_sources(empty_store, [str(broken), str(missing), str(shared_dir / "raw/blocksec")])
    assert report.sources[0].added == 1
    assert report.errors[0].startswith(f"{broken}:")
    assert report.errors[1] == f"{missing}: no such file or directory"
    assert report.sources[2].added == 285


async def test_progress_is_drawn_only_on_a_terminal(empty_store: IntelStore, shared_dir: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe, tty = io.StringIO(), Terminal()
    await ingest_sources(empty_store, [str(shared_dir / "raw/defillama")], progress=pipe)
    await ingest_sources(empty_store, [str(shared_dir / "raw/blocksec")], progress=tty)
    assert pipe.getvalue() == ""
    assert "all.json [" in tty.getvalue() and "100%" in tty.getvalue()


def test_the_summary_names_each_source_with_its_counts() -> None:
    from kamiyo_mcp.intel.report import IngestReport, SourceReport

    report = IngestReport([SourceReport("a.json", "defillama", 3, 1, 2, errors=["a.json:4: bad value"])], 6, 5)
    text = report.format()
    assert "a.json (defillama): 3 added, 1 updated, 2 skipped; 1 error" in text
    assert "a.json:4: bad value" in text


async def test_a_url_source_is_fetched_over_http(empty_store: IntelStore, shared_dir: Path, local_server) -> None:
    hacks = json.loads((shared_dir / "raw/defillama/hacks.json").read_text())
    server: LocalServer = local_server(lambda path, query: json_body(hacks))
    report = await ingest_sources(empty_store, [server.url + "/hacks"])
    assert report.added == 538 and report.sources[0].format == "defillama"


async def test_an_unreachable_url_names_the_url_and_other_sources_still_load(
    empty_store: IntelStore, shared_dir: Path, local_server
) -> None:
    server: LocalServer = local_server(lambda path, query: (503, "text/plain", b"down"))
    with pytest.raises(SourceFetchError, match=r"/hacks: HTTP 503") as caught:
        await ingest_sources(empty_store, [server.url + "/hacks", str(shared_dir / "raw/blocksec")])
    assert caught.value.report.added == 285


async def test_the_store_leaves_other_tables_alone_and_records_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with aiosqlite.connect(path) as db:
        await db.execute("CREATE TABLE billing_accounts (id INTEGER PRIMARY KEY)")
        await db.execute("INSERT INTO billing_accounts VALUES (7)")
        await db.commit()
    for _ in range(2):
        store = await IntelStore.open(path)
        assert await store.schema_version() == max(MIGRATIONS)
        await store.close()
    async with aiosqlite.connect(path) as db:
        rows = await (await db.execute("SELECT id FROM billing_accounts")).fetchall()
        names = [r[0] for r in await (await db.execute("SELECT name FROM sqlite_master WHERE type='table'")).fetchall()]
    assert rows == [(7,)]
    assert all(n.startswith(("intel_", "billing_")) for n in names)


async def test_a_directory_without_ingestible_files_is_an_error_naming_it(
    empty_store: IntelStore, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    report = await ingest_sources(empty_store, [str(tmp_path)])
    assert report.errors == [f"{tmp_path}: no ingestible files (*.json, *.jsonl or README.md)"]


async def test_the_readme_chain_guess_never_replaces_the_normalized_chain(
    empty_store: IntelStore, shared_dir: Path
) -> None:
    await ingest_sources(empty_store, [str(shared_dir / "exploits.jsonl")])
    await ingest_sources(empty_store, [str(shared_dir / "raw/defihacklabs/past/2021/README.md")])
    monox = await empty_store.get_incident("defihacklabs:2021-11-30:monox-finance")
    assert monox is not None and monox.incident.chains == ("Ethereum",)


def test_the_sources_setting_defaults_to_defillama_and_splits_on_commas_and_spaces() -> None:
    from kamiyo_mcp.intel.ingest import DEFAULT_SOURCE, sources_from_setting

    assert (
        sources_from_setting(None) == sources_from_setting("  ") == [DEFAULT_SOURCE] == ["https://api.llama.fi/hacks"]
    )
    assert sources_from_setting("a.json, b.jsonl  c") == ["a.json", "b.jsonl", "c"]


async def test_serving_offline_with_no_data_logs_one_line_and_carries_on(
    empty_store: IntelStore, local_server, caplog: pytest.LogCaptureFixture
) -> None:
    from kamiyo_mcp.intel.ingest import ingest_if_empty

    server: LocalServer = local_server(lambda path, query: (502, "text/plain", b"bad gateway"))
    report = await ingest_if_empty(empty_store, [server.url + "/hacks"])
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "/hacks: HTTP 502" in warnings[0].getMessage()
    assert report is not None and report.added == 0
    assert await empty_store.incident_count() == 0


async def test_serving_with_data_does_not_ingest_again(store: IntelStore) -> None:
    from kamiyo_mcp.intel.ingest import ingest_if_empty

    assert await ingest_if_empty(store, ["http://127.0.0.1:9/never-fetched"]) is None
