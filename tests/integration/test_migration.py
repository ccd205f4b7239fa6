"""Migrating a legacy register's history (SPEC §10) on both back ends: rows with a status,
closing date and CA columns become migrated records in their legacy state, their legacy dates
drive the KPIs, the caches keep agreeing with the events, and a re-run writes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.import_rows import ImportRejected, read_csv
from capa.app.migration import LegacySource
from capa.audit.caches import check_caches
from capa.reports.dashboard import collect
from tests.support.cast import OWNER, QUALITY_ENGINEER, QUALITY_MANAGER
from tests.support.stores import Store, app, store

__all__ = ["app", "store"]

REGISTER = """\
external_ref,title,description,source,severity,detected_on,Status,Closed On,Root Cause,\
Corrective Action,CA Owner,CA Closed On,Effectiveness,Legacy Notes
L-1,Cracked housing,Boss cracked,customer-complaint,major,2024-01-10,Closed,2024-03-02,\
Mould too cold,Raised mould temperature,J. Smith,2024-02-20,Effective - no recurrence,x
L-2,Seal weak,Peel below 8 N,process,minor,2024-02-01,closed,2024-02-11,,,,,,
L-3,Label smudged,Print head dirty,process,minor,2024-04-05,Open,,,,,,,
L-4,Wrong lot,Entered twice,process,minor,2024-05-05,Cancelled,2024-05-06,,,,,,
"""


def _migrate(app: CapaApplication, tmp_path: Path, text: str = REGISTER,
             system: str = "QMS 2019", **options: Any) -> Any:
    path = tmp_path / "register.csv"
    path.write_text(text, encoding="utf-8")
    header, rows = read_csv(path)
    return app.intake.import_ncs(rows, {}, header=header, source=LegacySource.of_file(path, system),
                                 **options)


def _events(store: Store) -> int:
    return store.event_count()


def test_legacy_rows_end_in_their_legacy_state_with_provenance(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    with store.acting(app, QUALITY_MANAGER):
        report = _migrate(app, tmp_path)
        assert (report.imported, report.migrated, report.already_migrated) == (4, 4, 0)
        assert report.ignored_columns == ["Legacy Notes"]
        ncs = {v.external_ref: v.model_dump() for v in app.queries.list_records("nc")}
        cas = [v.model_dump() for v in app.queries.list_records("ca")]
    assert {ref: nc["status"] for ref, nc in ncs.items()} == {
        "L-1": "closed", "L-2": "closed", "L-3": "open", "L-4": "cancelled"}
    closed = ncs["L-1"]
    digest = hashlib.sha256((tmp_path / "register.csv").read_bytes()).hexdigest()
    migration = closed["migration"]
    assert (migration["system"], migration["file"], migration["sha256"], migration["row"]) == (
        "QMS 2019", "register.csv", digest, 2)
    assert migration["values"]["Status"] == "Closed"  # the legacy value as the register had it
    assert (migration["legacy_status"], migration["closed_on"], migration["by"]) == (
        "closed", "2024-03-02", QUALITY_MANAGER)
    assert closed["closure"]["signature"] is None  # no signature is made up
    [ca] = cas
    assert closed["linked_cas"] == [ca["id"]] and ca["linked_ncs"] == [closed["id"]]
    assert closed["closure"]["with_ca"] == ca["id"]
    assert ca["status"] == "closed" and ca["owner"] == "J. Smith"
    legacy = ca["migration"]
    assert (legacy["root_cause"], legacy["action"], legacy["closed_on"], legacy["effective"]) == (
        "Mould too cold", "Raised mould temperature", "2024-02-20", True)
    assert legacy["opened_on"] == "2024-01-10" and "detection date" in legacy["note"]
    assert "no corrective action for this row" in ncs["L-2"]["migration"]["note"]
    assert ncs["L-3"].get("closure") is None and ncs["L-3"]["migration"]["closed_on"] is None
    assert ncs["L-4"]["cancellation"]["reason"].startswith("Migrated from QMS 2019")
    # Each record reached its state through events: Raised/Opened, then Migrated.
    with store.acting(app, QUALITY_MANAGER):
        assert [e.event_type for e in app.records.history(closed["id"])] == ["Raised", "Migrated"]
        assert [e.event_type for e in app.records.history(ca["id"])] == ["Opened", "Migrated"]
        said = app.records.history(closed["id"])[-1].reason
    assert said == ("Migrated from QMS 2019 (register.csv, row 2) by mhernandez: legacy status "
                    "closed on 2024-03-02; the earlier steps happened in the legacy system")
    check_caches(app, {})  # the read tables agree with a fold of the events


def test_legacy_dates_drive_the_kpis(store: Store, app: CapaApplication,
                                     tmp_path: Path) -> None:
    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path)
        figures = collect(app.read_models, dt.date.today().isoformat(),
                          start="2024-01-01")  # the legacy years, not the default last 12 months
        rows = {r["external_ref"]: r for r in app.read_models.table("nc_summary")}
        [ca] = app.read_models.table("ca_summary")
    # L-1: 2024-01-10 -> 2024-03-02 is 52 days; L-2: 2024-02-01 -> 2024-02-11 is 10 days.
    assert figures.mean_days_to_close_nc == 31.0
    assert figures.mean_days_to_close_ca == 41.0  # 2024-01-10 -> 2024-02-20
    assert figures.first_time_effective_rate == 100.0
    trend = {month: (raised, closed) for month, raised, closed in figures.trend}
    assert (trend["2024-02"], trend["2024-03"]) == ((1, 1), (0, 1))  # by the legacy dates
    assert rows["L-1"]["closed_at"] == "2024-03-02" and rows["L-3"]["closed_at"] is None
    assert (ca["opened_at"], ca["closed_at"], ca["first_time_effective"]) == (
        "2024-01-10", "2024-02-20", 1)


def test_a_rerun_writes_nothing_and_says_how_many_were_migrated(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    without_refs = "\n".join(",".join(line.split(",")[1:]) for line in REGISTER.splitlines())
    with store.acting(app, QUALITY_MANAGER):
        for text in (REGISTER, without_refs + "\n"):
            _migrate(app, tmp_path, text)
            events = _events(store)
            again = _migrate(app, tmp_path, text)
            dry = _migrate(app, tmp_path, text, dry_run=True)
            assert (again.imported, again.already_migrated) == (0, 4)
            assert (dry.imported, dry.already_migrated) == (0, 4)
            assert _events(store) == events
        assert len(app.queries.list_records("nc")) == 8


def test_an_open_row_with_a_ca_continues_its_lifecycle_in_capa(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    text = ("title,description,source,severity,detected_on,status,root_cause,ca_owner\n"
            f"Burr,Edge burr,process,minor,2024-06-01,in progress,Worn tool,{OWNER}\n")
    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path, text)
        [nc] = app.queries.list_records("nc")
        [ca] = app.queries.list_records("ca")
    assert (nc.status, ca.status, ca.owner) == ("linked", "open", OWNER)
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca.id, method="other", root_cause="Worn tool",
                                              category="machine")
    with store.acting(app, QUALITY_ENGINEER):
        assert app.records.show(ca.id).status == "investigated"
        check_caches(app, {})


def test_a_reopened_migrated_record_no_longer_reports_its_legacy_closure(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path)
        ref = next(v.id for v in app.queries.list_records("nc") if v.external_ref == "L-2")
        app.nonconformities.reopen_nc(ref, reason="Legacy closure lacked evidence")
        row = next(r for r in app.read_models.table("nc_summary") if r["id"] == ref)
        check_caches(app, {})
    assert (row["status"], row["closed_at"]) == ("open", None)


HEADER = "title,description,source,severity,detected_on,status,closed_on,ca_action,ca_closed_on\n"
REFUSALS = {
    "closed before detection": ("T,D,process,minor,2024-05-01,closed,2024-04-30,,",
                                "closed_on", "before detected-on 2024-05-01"),
    "closed in the future": ("T,D,process,minor,2024-05-01,closed,2999-01-01,,", "closed_on",
                             "in the future"),
    "closed without a date": ("T,D,process,minor,2024-05-01,closed,,,", "closed_on",
                              "needs its closing date"),
    "open with a date": ("T,D,process,minor,2024-05-01,open,2024-05-02,,", "closed_on",
                         "status is open"),
    "unknown status": ("T,D,process,minor,2024-05-01,parked,,,", "status",
                       "'parked' is not one of"),
    "empty status": ("T,D,process,minor,2024-05-01,,,,", "status", "status is empty"),
    "closed with an open CA": ("T,D,process,minor,2024-05-01,closed,2024-05-03,Fix it,",
                               "ca_closed_on", "has no closing date"),
    "CA closed, record open": ("T,D,process,minor,2024-05-01,open,,Fix it,2024-05-02",
                               "ca_closed_on", "the record is open"),
    "CA closed before detection": ("T,D,process,minor,2024-05-01,closed,2024-05-03,Fix,2024-04-01",
                                   "ca_closed_on", "before detected-on"),
    "terminal escape in the status": ("T,D,process,minor,2024-05-01,\x1b[31mclosed,2024-05-03,,",
                                      "status", "\\x1b[31mclosed"),
    "undated row closed in the past": ("T,D,process,minor,,closed,2024-05-03,,", "closed_on",
                                       "counts as detected today"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_row_breaking_a_migration_rule_refuses_the_file_and_stores_nothing(
        store: Store, app: CapaApplication, tmp_path: Path, case: str) -> None:
    line, column, reason = REFUSALS[case]
    good = "Fine,Fine,process,minor,2024-05-01,closed,2024-05-03,,\n"
    with store.acting(app, QUALITY_MANAGER):
        before = _events(store)
        with pytest.raises(ImportRejected) as refused:
            _migrate(app, tmp_path, HEADER + good + line + "\n")
        assert _events(store) == before
    [error] = refused.value.report.errors
    assert (error.row, error.column) == (3, column)
    assert reason in error.reason
    assert "\x1b" not in error.reason


def test_an_open_ca_needs_an_owner_who_is_a_user(store: Store, app: CapaApplication,
                                                 tmp_path: Path) -> None:
    text = ("title,description,source,severity,status,ca_action,ca_owner\n"
            "T,D,process,minor,open,Fix it,J. Smith\n")
    with store.acting(app, QUALITY_MANAGER):
        before = _events(store)
        with pytest.raises(ImportRejected) as refused:
            _migrate(app, tmp_path, text)
        assert _events(store) == before
    assert "'J. Smith' is not a user" in refused.value.report.errors[0].reason


def test_a_register_without_ca_columns_says_so(store: Store, app: CapaApplication,
                                               tmp_path: Path) -> None:
    text = "title,description,source,severity,detected_on,status,closed_on\n" \
           "T,D,process,minor,2024-05-01,done,2024-05-09\n"
    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path, text)
        [nc] = app.queries.list_records("nc")
    assert nc.status == "closed"
    assert (nc.migration or {})["note"].endswith("the legacy register has no corrective-action "
                                                 "columns")


def test_hostile_legacy_text_is_kept_exactly_as_data(store: Store, app: CapaApplication,
                                                     tmp_path: Path) -> None:
    hostile = {"root": "=HYPERLINK(\"http://x\")", "action": "<script>alert(1)</script> **bold**",
               "effect": "Эффективно — 有效"}
    text = ("title,description,source,severity,detected_on,status,closed_on,root_cause,ca_action,"
            "ca_closed_on,effectiveness\n"
            f"Ошибка маркировки,# Heading,process,minor,2024-05-01,closed,2024-05-09,"
            f"\"{hostile['root'].replace(chr(34), chr(34) * 2)}\",{hostile['action']},"
            f"2024-05-08,{hostile['effect']}\n")
    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path, text, system="Legacy\x1b]0;owned\x07 QMS\nline")
        [nc] = app.queries.list_records("nc")
        [ca] = app.queries.list_records("ca")
    legacy = ca.migration or {}
    assert (legacy["root_cause"], legacy["action"], legacy["effectiveness"]) == (
        hostile["root"], hostile["action"], hostile["effect"])
    assert legacy["effective"] is None  # neither yes nor no in words this reads
    system = (nc.migration or {})["system"]
    assert "\x1b" not in system and "\n" not in system and system.startswith("Legacy")
    assert nc.title == "Ошибка маркировки"


def test_over_long_legacy_text_and_an_owner_with_control_characters_are_refused(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    word = "x" * 30_000
    text = ("title,description,source,severity,detected_on,status,closed_on,root_cause,ca_owner,"
            "ca_closed_on\n"
            f"T,D,process,minor,2024-05-01,closed,2024-05-09,{word},Smith\x1b[2J,2024-05-08\n")
    with store.acting(app, QUALITY_MANAGER):
        before = _events(store)
        with pytest.raises(ImportRejected) as refused:
            _migrate(app, tmp_path, text)
        assert _events(store) == before
    assert [e.column for e in refused.value.report.errors] == ["root_cause", "ca_owner"]


def test_unknown_columns_are_reported_by_a_plain_import_too(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    text = "title,description,source,severity,State\nT,D,process,minor,Texas\n"
    with store.acting(app, QUALITY_MANAGER):
        report = _migrate(app, tmp_path, text, dry_run=True)
    # "State" (a US state in regulator exports) is never read as a status.
    assert (report.migrated, report.imported, report.ignored_columns) == (0, 1, ["State"])


def test_the_8d_report_of_a_migrated_record_says_what_the_legacy_system_recorded(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:

    from capa.reports.render import render

    with store.acting(app, QUALITY_MANAGER):
        _migrate(app, tmp_path)
        ref = next(v.id for v in app.queries.list_records("nc") if v.external_ref == "L-1")
        text = render(app.queries.report(ref), "md").decode("utf-8")
    assert "Recorded in the legacy system: Mould too cold" in text
    assert "Recorded in the legacy system: Raised mould temperature" in text
    assert f"{ref}: Migrated from QMS 2019 (register.csv, row 2)" in text
    assert "Effectiveness in the legacy system: Effective - no recurrence" in text
    for misleading in ("No root-cause analysis recorded", "No corrective action planned",
                       "Nothing implemented yet", "Not closed yet"):
        assert misleading not in text
