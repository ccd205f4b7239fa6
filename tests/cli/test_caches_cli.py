"""SPEC §9.1 "nothing derived is trusted", attacked as someone who can write the store would:
snapshot rows and read tables edited directly in the SQLite file or the PostgreSQL tables.

What capa shows, signs, exports and enforces still comes from the events; `capa audit verify`
names every edited row with its table and record (exit 6); `capa readmodels rebuild` repairs
them. Snapshot rows are made as earlier releases made them (a snapshot every 50 events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from eventsourcing.application import Application

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.store import store_env
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import record_uuid
from tests.support.backends import query

if TYPE_CHECKING:
    from conftest import Capa, Outcome

pytestmark = pytest.mark.cli


class EarlierRelease(CapaApplication):
    """capa as releases before §9.1 ran it: a snapshot of a record every 50 events."""

    name = CapaApplication.name  # the same tables (PostgreSQL names them after the application)
    snapshotting_intervals = {Nonconformity: 50, CorrectiveAction: 50}

    def construct_env(self, name: str, env: Any = None) -> Any:
        return Application.construct_env(self, name, env)


@contextmanager
def earlier_release(capa: Capa) -> Iterator[CapaApplication]:
    app = EarlierRelease(env=store_env(parse_target(capa.target), create=True))
    try:
        yield app
    finally:
        app.close()


def snapshots(capa: Capa) -> list[tuple[Any, ...]]:
    return query(capa.target, "SELECT originator_id, originator_version, state "
                              "FROM stored_snapshots ORDER BY originator_version")


def forge_snapshot(capa: Capa, ref: str, field: str, value: str) -> None:
    """Rewrite one field of the record's snapshot, as a DBA with the bytes in front of them."""
    rows = [r for r in snapshots(capa) if str(r[0]).replace("-", "") == record_uuid(ref).hex]
    assert rows, f"{ref} has no snapshot"
    record_id, version, state = rows[-1]
    document = json.loads(bytes(state))
    assert document["state"][field] != value
    document["state"][field] = value
    forged = json.dumps(document, separators=(",", ":")).encode()
    query(capa.target, "UPDATE stored_snapshots SET state = ? WHERE originator_id = ? AND "
                       "originator_version = ?", forged, record_id, version)


def snapshot_table(capa: Capa) -> str:
    return "stored_snapshots" if capa.backend == "sqlite" else "capa_snapshots"


def verify_fails(capa: Capa, *args: str) -> list[dict[str, str]]:
    """`audit verify` must fail with exit 6 and list every mismatch; returns them."""
    human = capa.run("audit", "verify", *args, user=capa.reporter)
    assert human.code == 6, (human.stdout, human.stderr)
    assert human.stderr.count("\n") == 1 and "do not match the event log" in human.stderr
    outcome = capa.run("--json", "audit", "verify", *args, user=capa.reporter)
    assert outcome.code == 6, outcome.stderr
    summary = outcome.json()
    assert summary["status"] == "caches-differ"
    mismatches: list[dict[str, str]] = summary["mismatches"]
    assert summary["cache_mismatches"] == len(mismatches) > 0
    lines = human.stdout.splitlines()
    assert lines == [f"mismatch: {m['table']} {m['record']}: {m['problem']}" for m in mismatches]
    return mismatches


def verify_passes(capa: Capa, *args: str) -> dict[str, Any]:
    outcome = capa.run("--json", "audit", "verify", *args, user=capa.reporter)
    assert outcome.code == 0, outcome.stderr
    result: dict[str, Any] = outcome.json()
    assert result["status"] == "verified"
    return result


def evidence(capa: Capa, ref: str, folder: Path) -> dict[str, Any]:
    """Everything capa gives as evidence of a record: show, history, the 8D report, exports."""
    report = folder / f"{ref}-{len(list(folder.iterdir()))}.md"
    assert capa.run("report", ref, "--format", "md", "--out", str(report)).code == 0
    exported = capa.run("--json", "export", "--format", "csv")
    events = capa.run("--json", "export", "--format", "jsonl")
    assert exported.code == events.code == 0, exported.stderr + events.stderr
    return {"show": capa.run("--json", ref[:2].lower(), "show", ref).json(),
            "history": capa.run("--json", "history", ref).json(),
            "report": report.read_text().split("Generated", 1)[1].split("\n", 1)[1],
            "csv": exported.json(), "jsonl": events.json()}


# -- snapshots ---------------------------------------------------------------------------------


def test_a_forged_snapshot_never_changes_the_record_and_verify_names_it(
        capa: Capa, tmp_path: Path) -> None:
    nc = capa.nc("Title 0")
    with earlier_release(capa) as old, old.acting_as(capa.quality_manager, capa.password):
        for n in range(1, 53):
            old.nonconformities.amend_nc(nc, field="title", value=f"Title {n}", reason="Clarified")
    assert [r[1] for r in snapshots(capa)] == [50]
    assert capa.run("audit", "checkpoint").code == 0
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(capa.run("--json", "audit", "checkpoint").json()["note"])
    # A snapshot that matches its events is no tampering: an old store verifies as it is.
    assert verify_passes(capa)["caches_checked"]["snapshots"] == 1

    forge_snapshot(capa, nc, "title", "Nothing wrong here")
    shown = capa.run("--json", "nc", "show", nc)
    assert shown.json()["title"] == "Title 52"
    assert capa.run("--json", "nc", "show", nc, "--version", "50").json()["title"] == "Title 49"
    assert "Nothing wrong here" not in capa.run("nc", "show", nc, "--version", "51").stdout
    for args in ((), ("--against", str(kept))):
        mismatches = verify_fails(capa, *args)
        assert mismatches == [{"table": snapshot_table(capa), "record": f"{nc} version 50",
                               "problem": "differs from the events in title"}]

    rebuilt = capa.run("--json", "readmodels", "rebuild")
    assert rebuilt.code == 0, rebuilt.stderr
    assert rebuilt.json()["snapshots_removed"] == 1
    assert snapshots(capa) == []
    verify_passes(capa, "--against", str(kept))


def test_a_forged_owner_in_a_snapshot_does_not_let_the_owner_approve(capa: Capa) -> None:
    ca = capa.ca(owner=capa.quality_engineer)
    with earlier_release(capa) as old, old.acting_as(capa.quality_engineer, capa.password):
        old.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["The boss cracks"])
        for n in range(1, 50):
            old.corrective_actions.plan_ca(ca, action=f"Sort lot L{n}", assignee=capa.technician,
                                           due=capa.day(10), action_type="correction")
    assert [r[1] for r in snapshots(capa)] == [50]
    forge_snapshot(capa, ca, "owner", capa.owner)

    # R2: the owner may not approve their own plan, whatever the snapshot says.
    capa.refused("ca", "approve", ca, code=1, user=capa.quality_engineer, rule="R2")
    assert capa.run("--json", "ca", "show", ca).json()["owner"] == capa.quality_engineer
    [mismatch] = verify_fails(capa)
    assert mismatch["table"] == snapshot_table(capa)
    assert mismatch["record"] == f"{ca} version 50"
    assert "owner" in mismatch["problem"]
    approved = capa.write("ca", "approve", ca, user=capa.quality_manager)
    assert approved["status"] == "approved"


def test_a_snapshot_of_a_version_the_log_lacks_or_of_unreadable_bytes_is_named(
        capa: Capa) -> None:
    nc = capa.nc()
    with earlier_release(capa) as old, old.acting_as(capa.quality_manager, capa.password):
        for n in range(1, 50):
            old.nonconformities.amend_nc(nc, field="lot", value=f"L{n}", reason="Clarified")
    [(record_id, version, state)] = snapshots(capa)
    query(capa.target, "UPDATE stored_snapshots SET originator_version = 70")
    assert verify_fails(capa) == [{"table": snapshot_table(capa), "record": f"{nc} version 70",
                                   "problem": "the log has no such record version"}]
    query(capa.target, "UPDATE stored_snapshots SET originator_version = ?, state = ?",
          version, b"{not json")
    assert verify_fails(capa)[0]["problem"] == "the snapshot cannot be read"
    assert record_id and state
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)


# -- read tables -------------------------------------------------------------------------------


def built(capa: Capa) -> tuple[str, str]:
    """An NC with an approved CA of two action items, its read tables built by `nc list`."""
    nc = capa.assessed_nc("Cracked housing")
    ca = capa.approved_ca(nc)
    assert capa.run("nc", "list").code == 0
    assert capa.run("audit", "checkpoint").code == 0
    verify_passes(capa)
    return nc, ca


def test_an_edited_summary_is_named_and_changes_no_evidence(capa: Capa, tmp_path: Path) -> None:
    nc, ca = built(capa)
    reports = tmp_path / "reports"
    reports.mkdir()
    before = {ref: evidence(capa, ref, reports) for ref in (nc, ca)}
    query(capa.target, "UPDATE nc_summary SET title = 'Nothing wrong', status = 'closed', "
                       "doc = replace(doc, 'Cracked housing', 'Nothing wrong') WHERE id = ?", nc)
    query(capa.target, "UPDATE ca_summary SET owner = ? WHERE id = ?", capa.quality_manager, ca)
    # Lists may come from the read tables; the evidence never does.
    listed = capa.run("--json", "nc", "list").json()
    assert [n["title"] for n in listed] == ["Nothing wrong"]
    assert {ref: evidence(capa, ref, reports) for ref in (nc, ca)} == before
    # A bundle holds the events alone: it is written, and it verifies.
    bundle = tmp_path / "bundle"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    assert capa.run("audit", "verify-bundle", str(bundle), user=None).code == 0
    assert verify_fails(capa) == [
        {"table": "nc_summary", "record": nc,
         "problem": "differs from the events in status, title, doc"},
        {"table": "ca_summary", "record": ca, "problem": "differs from the events in owner"}]

    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)
    assert [n["title"] for n in capa.run("--json", "nc", "list").json()] == ["Cracked housing"]


def test_an_edited_risk_level_is_named_and_rebuild_repairs_it(capa: Capa) -> None:
    # The dashboard counts NCs by this column alone, so an edit of it must not pass verify.
    nc, _ = built(capa)
    held = query(capa.target, "SELECT risk_level FROM nc_summary WHERE id = ?", nc)
    assert held == [("high",)]  # impact 4, likelihood 3
    query(capa.target, "UPDATE nc_summary SET risk_level = 'low' WHERE id = ?", nc)
    assert verify_fails(capa) == [{"table": "nc_summary", "record": nc,
                                   "problem": "differs from the events in risk_level"}]
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)
    assert query(capa.target, "SELECT risk_level FROM nc_summary WHERE id = ?", nc) == held


def test_deleted_action_items_and_an_added_row_are_each_named(capa: Capa) -> None:
    nc, ca = built(capa)
    query(capa.target, "DELETE FROM action_items WHERE ca = ?", ca)
    query(capa.target, "INSERT INTO nc_summary SELECT 'NC-2000-0001', 20000000001, status, "
                       "severity, source, product, lot, title, external_ref, detected_on, "
                       "raised_at, closed_at, NULL, risk_level, linked_cas, version, doc "
                       "FROM nc_summary WHERE id = ?", nc)
    query(capa.target, "UPDATE nc_summary SET cause_category = 'people' WHERE id = ?", nc)
    assert capa.run("--json", "overdue").code == 0
    found = verify_fails(capa)
    assert {"table": "action_items", "record": f"{ca} A1",
            "problem": "missing: the events have this row"} in found
    assert {"table": "action_items", "record": f"{ca} A2",
            "problem": "missing: the events have this row"} in found
    assert {"table": "nc_summary", "record": "NC-2000-0001",
            "problem": "not in the events: the record was added"} in found
    assert {"table": "nc_summary", "record": nc,
            "problem": "cause_category is 'people', but its CAs give 'machine'"} in found
    assert len(found) == 4
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)


def test_a_moved_tracking_position_is_named(capa: Capa) -> None:
    nc, ca = built(capa)
    capa.write("ca", "complete", ca, "A1", "--note", "312 sorted", user=capa.technician)
    last = int(query(capa.target, "SELECT MAX(rowid) FROM stored_events")[0][0])
    # Forward over the completion: the read tables would never learn of it.
    query(capa.target, "UPDATE rm_tracking SET position = ?", last)
    named = {(m["table"], m["record"]) for m in verify_fails(capa)}
    assert {("ca_summary", ca), ("action_items", f"{ca} A1")} <= named
    # Past the end of the log: whatever comes next would be skipped.
    query(capa.target, "UPDATE rm_tracking SET position = ?", last + 100)
    found = verify_fails(capa)
    assert found[0] == {"table": "rm_tracking", "record": "capa-readmodels",
                        "problem": f"position {last + 100} is not a position of the log "
                                   f"(1..{last})"}
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)
    assert nc


def test_tables_that_lag_behind_the_log_verify_and_verify_writes_nothing(capa: Capa) -> None:
    nc, ca = built(capa)
    tracked = query(capa.target, "SELECT position FROM rm_tracking")
    capa.write("nc", "amend", nc, "--field", "lot", "--value", "L2311", "--reason", "Typo",
               user=capa.quality_engineer)
    capa.write("ca", "complete", ca, "A1", "--note", "312 sorted", user=capa.technician)
    rows = {t: query(capa.target, f"SELECT * FROM {t} ORDER BY 1, 2")  # noqa: S608
            for t in ("nc_summary", "ca_summary", "action_items", "nc_ca_links")}
    checked = verify_passes(capa)["caches_checked"]
    assert checked == {"snapshots": 0, "read_table_records": 2}
    assert query(capa.target, "SELECT position FROM rm_tracking") == tracked
    assert rows == {t: query(capa.target, f"SELECT * FROM {t} ORDER BY 1, 2")  # noqa: S608
                    for t in rows}


def test_verify_of_a_store_without_caches_checks_none(capa: Capa) -> None:
    capa.nc()
    result: Outcome = capa.run("--json", "audit", "verify", user=capa.reporter)
    assert result.code == 0, result.stderr
    assert result.json()["caches_checked"] == {"snapshots": 0, "read_table_records": 0}


def test_a_removed_tracking_row_or_table_is_named(capa: Capa) -> None:
    nc, ca = built(capa)
    query(capa.target, "INSERT INTO nc_ca_links (nc, ca) VALUES (?, 'CA-2000-0001')", nc)
    query(capa.target, "DELETE FROM rm_tracking")
    # Starting again from the first event would keep the added link: it is named.
    found = verify_fails(capa)
    assert found[0] == {"table": "rm_tracking", "record": "capa-readmodels", "problem":
                        "the tracked position is missing, but the read tables are there"}
    assert {"table": "nc_ca_links", "record": "CA-2000-0001",
            "problem": "not in the events: the record was added"} in found
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)
    query(capa.target, "DROP TABLE action_items")
    assert verify_fails(capa) == [{"table": "action_items", "record": "(whole table)",
                                   "problem": "the table is missing"}]
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)
    assert ca


def test_past_the_listing_limit_the_mismatches_are_counted(
        capa: Capa, monkeypatch: pytest.MonkeyPatch) -> None:
    _, ca = built(capa)
    query(capa.target, "DELETE FROM action_items WHERE ca = ?", ca)
    monkeypatch.setattr("capa.audit.caches._LISTED", 1)
    outcome = capa.run("--json", "audit", "verify", user=capa.reporter)
    assert outcome.code == 6
    summary = outcome.json()
    assert summary["cache_mismatches"] == 2
    assert summary["mismatches"] == [{"table": "action_items", "record": f"{ca} A1",
                                      "problem": "missing: the events have this row"}]
    assert "2 cached row(s) do not match" in outcome.error()["message"]


def test_an_added_read_table_row_never_makes_an_import_skip_a_row(
        capa: Capa, tmp_path: Path) -> None:
    nc, _ = built(capa)
    # A row claiming that the complaint is already in the store, by an NC the log has.
    query(capa.target, "UPDATE nc_summary SET external_ref = 'CMP-7' WHERE id = ?", nc)
    complaints = tmp_path / "complaints.csv"
    complaints.write_text("external_ref,title,description,source,severity\n"
                          "CMP-7,Loose cap,Cap turns freely,customer-complaint,minor\n")
    first = capa.run("--json", "import", str(complaints))
    assert first.code == 0, first.stderr
    assert (first.json()["imported"], first.json()["skipped_existing"]) == (1, 0)
    again = capa.run("--json", "import", str(complaints))
    assert (again.json()["imported"], again.json()["skipped_existing"]) == (0, 1)


# -- NCs raised and amended: their rows are read from the events' JSON (P8) -----------------

HOSTILE = ["**Bold** [link](http://x) <script>alert(1)</script>", "=HYPERLINK(\"http://x\")",
           "Riss am Gehäuse \x1b[31mrot\x1b[0m", "ひび割れ 裂纹 трещина", "W" * 400]


def amended_ncs(capa: Capa) -> list[str]:
    """NCs raised and amended, some many times and to hostile text; one also assessed."""
    refs = [capa.nc(f"Housing {n}") for n in range(3)]
    for n, text in enumerate(HOSTILE):
        capa.write("nc", "amend", refs[0], "--field", "description", "--value", text,
                   "--reason", f"Clarified {n}", user=capa.quality_manager)
    capa.write("nc", "amend", refs[1], "--field", "title", "--value", HOSTILE[3],
               "--reason", "Retitled", user=capa.quality_manager)
    capa.write("nc", "amend", refs[1], "--field", "lot", "--value", "L-7",
               "--reason", "Lot found", user=capa.quality_manager)
    capa.write("nc", "amend", refs[1], "--field", "severity", "--value", "minor",
               "--reason", "Downgraded", user=capa.quality_manager)
    capa.write("nc", "assess", refs[2], "--impact", "4", "--likelihood", "3", "--capa-required",
               user=capa.quality_engineer)
    assert capa.run("nc", "list").code == 0
    assert capa.run("audit", "checkpoint").code == 0
    return refs


def test_rows_read_from_the_json_are_those_of_the_full_fold(
        capa: Capa, monkeypatch: pytest.MonkeyPatch) -> None:
    from capa.audit import cache_rows
    from capa.readmodels.replay import folded, log_reader

    amended_ncs(capa)
    capa.approved_ca(capa.assessed_nc("Burr"))
    read: list[str] = []
    light = cache_rows._nc_row

    def counted(*args: Any) -> Any:
        row = light(*args)
        if row is not None:
            read.append(str(row[0]))
        return row

    monkeypatch.setattr(cache_rows, "_nc_row", counted)
    app = CapaApplication(env=store_env(parse_target(capa.target), create=False))
    try:
        with log_reader(app) as reader:
            last = reader.last_position()
            fast = [(f.ref, f.kind, f.rows) for f in cache_rows.folded_rows(app, reader, last)]
            full = [(f.ref, f.kind, f.rows) for f in folded(app, reader, upto=last)]
    finally:
        app.close()
    assert fast == full
    assert len(fast) == 5  # four NCs and a CA
    assert len(read) == 2  # the two amended (and not assessed) NCs were read from the JSON


def test_an_edited_row_of_an_amended_nc_is_named(capa: Capa) -> None:
    first, second, _ = amended_ncs(capa)
    verify_passes(capa)
    # Back to what the NC said before its corrections: the doc alone differs.
    query(capa.target, "UPDATE nc_summary SET doc = replace(doc, ?, 'Hairline crack at boss B2') "
                       "WHERE id = ?", json.dumps(HOSTILE[-1])[1:-1], first)
    query(capa.target, "UPDATE nc_summary SET version = 1 WHERE id = ?", second)
    assert verify_fails(capa) == [
        {"table": "nc_summary", "record": first, "problem": "differs from the events in doc"},
        {"table": "nc_summary", "record": second,
         "problem": "differs from the events in version"}]
    query(capa.target, "DELETE FROM nc_summary WHERE id = ?", first)
    assert verify_fails(capa)[0] == {"table": "nc_summary", "record": first,
                                     "problem": "missing: the events have this row"}
    assert capa.run("readmodels", "rebuild").code == 0
    verify_passes(capa)


@pytest.mark.parametrize(("state", "field"), [
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L1","new":"L2","reason":"r"}', "lot"),
    # The keys' text inside a value is escaped, so it is never taken for a key.
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"title","old":"\\"field\\":\\"status","new":"x","reason":"r"}',
     "title"),
    # Anything else is decoded in full: a key twice, another stored type, a class version,
    # a field that cannot be amended, a key missing, spaced JSON, not an object.
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","field":"status","old":"L1","new":"L2","reason":"r"}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L1","new":{"_type_":"x","_data_":1},"reason":"r"}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L1","new":"L2","reason":"r","class_version":2}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"status","old":"open","new":"closed","reason":"r"}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L1","reason":"r"}', None),
    (b'{"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}, '
     b'"actor": "a", "field": "lot", "old": "L1", "new": "L2", "reason": "r"}', None),
    (b'["timestamp","actor","field","old","new","reason"]', None),
    # Not JSON at all: an escape JSON has not, a raw control character, an unclosed string.
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L\\q","new":"L2","reason":"r"}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L\x01","new":"L2","reason":"r"}', None),
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"actor":"a","field":"lot","old":"L1,"new":"L2","reason":"r"}', None),
    # The same keys in another order: decoded in full.
    (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
     b'"field":"lot","actor":"a","old":"L1","new":"L2","reason":"r"}', None),
])
def test_a_correction_is_only_passed_over_when_its_field_is_certain(
        state: bytes, field: str | None) -> None:
    from capa.audit.cache_rows import _corrected

    assert _corrected(state) == field
