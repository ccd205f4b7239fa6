"""Bulk NC intake on a real SQLite file: every row validated first, atomic batches, idempotent
on external reference, real-world CSV quirks normalised."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from capa.app import intake
from capa.app.application import CapaApplication
from capa.app.import_rows import ImportRejected, clean, parse_day, read_csv
from capa.domain.errors import InvalidInput, NotPermitted
from tests.support.cast import AUDITOR, REPORTER
from tests.support.reading import reading
from tests.support.stores import Store, app, has_accounts, store

__all__ = ["app", "store"]

CSV = """\
Ref,Summary,Details,Where,How bad,When,Units
C-1,Cracked housing,"Boss cracked
after three weeks, café customer",customer-complaint,Class II,1/28/2024 0:00:00,"40,915.00"
C-2,Seal weak,Peel below 8 N,process,critical,03/02/2024,None
C-3,Label smudged,Print head dirty,process,minor,2024-04-05,", "
"""
MAP = {"Ref": "external_ref", "Summary": "title", "Details": "description", "Where": "source",
       "How bad": "severity", "When": "detected_on", "Units": "lot"}
#: The layout of CSV's dates, which are not ISO: the import reads them only when told.
US = "MM/DD/YYYY"


def _write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_imports_rows_with_real_world_quirks(store: Store, app: CapaApplication,
                                             tmp_path: Path) -> None:
    header, rows = read_csv(_write(tmp_path, CSV))
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(rows, MAP, date_format=US, header=header)
    assert (report.imported, report.skipped_existing, report.errors) == (3, 0, [])
    with reading(app):
        first = app.records.show(report.first_id or "")
    assert first.model_dump()["description"] == "Boss cracked\nafter three weeks, café customer"
    data = first.model_dump()
    assert (data["severity"], data["detected_on"], data["lot"]) == ("major", "2024-01-28", "40915")
    with reading(app):
        second = app.records.show(report.last_id or "").model_dump()
    assert second["lot"] is None
    with reading(app):
        assert [v.external_ref for v in app.queries.list_records("nc")] == ["C-1", "C-2", "C-3"]


def test_a_rerun_imports_nothing_twice(store: Store, app: CapaApplication,
                                       tmp_path: Path) -> None:
    header, rows = read_csv(_write(tmp_path, CSV))
    with store.acting(app, REPORTER):
        app.intake.import_ncs(rows, MAP, date_format=US, header=header)
        events = store.event_count()
        again = app.intake.import_ncs(rows, MAP, date_format=US, header=header)
    assert (again.imported, again.skipped_existing) == (0, 3)
    assert store.event_count() == events


def test_an_interrupted_import_completes_on_rerun(store: Store, app: CapaApplication,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["external_ref,title,description,source,severity"]
    lines += [f"R-{i},Defect {i},Seen at inspection,process,minor" for i in range(25)]
    header, rows = read_csv(_write(tmp_path, "\n".join(lines) + "\n"))
    monkeypatch.setattr(intake, "BATCH_SIZE", 10)
    calls = {"n": 0}
    real = intake._save_batch

    def dying(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed between the first and second batch
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(intake, "_save_batch", dying)
    with store.acting(app, REPORTER), pytest.raises(KeyboardInterrupt):
        app.intake.import_ncs(rows, {}, header=header)
    with reading(app):
        assert len(app.queries.list_records("nc")) == 10
    monkeypatch.setattr(intake, "_save_batch", real)
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(rows, {}, header=header)
    assert (report.imported, report.skipped_existing) == (15, 10)
    with reading(app):
        refs = [v.external_ref for v in app.queries.list_records("nc")]
    assert sorted(refs) == sorted(f"R-{i}" for i in range(25))


def test_rows_break_the_limits_single_records_keep(store: Store, app: CapaApplication,
                                                   tmp_path: Path) -> None:
    long_title = "T" * 1001
    text = ("title,description,source,severity,lot\n"
            f"{long_title},d,process,minor,\n"
            "Bell\x07title,d,process,minor,\n"
            "\u200b,d,process,minor,\n"
            "Fine,d,process,minor,L\x01\n")
    header, rows = read_csv(_write(tmp_path, text))
    before = store.event_count()
    with store.acting(app, REPORTER), pytest.raises(ImportRejected) as refused:
        app.intake.import_ncs(rows, {}, header=header)
    assert [(e.row, e.column, e.reason) for e in refused.value.report.errors] == [
        (2, "title", "title is 1,001 characters long; at most 1,000"),
        (3, "title", "title must be one line, without tabs or control characters"),
        (4, "title", "title is empty"),
        (5, "lot", "lot must be one line, without tabs or control characters"),
    ]
    assert store.event_count() == before


def test_any_bad_row_refuses_the_whole_file(store: Store, app: CapaApplication,
                                            tmp_path: Path) -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    text = CSV + f"C-4,,No title,process,minor,2024-01-01,\nC-5,T,D,garage,huge,{future},\n" \
        + "C-6,T,D,process,minor,31/31/2024,\n"
    header, rows = read_csv(_write(tmp_path, text))
    before = store.event_count()
    with store.acting(app, REPORTER), pytest.raises(ImportRejected) as refused:
        app.intake.import_ncs(rows, MAP, date_format=US, header=header)
    errors = [(e.row, e.column, e.reason.split(" ")[0]) for e in refused.value.report.errors]
    assert errors == [(5, "Summary", "title"), (6, "Where", "source"), (6, "How bad", "severity"),
                      (6, "When", "detected-on"), (7, "When", "'31/31/2024'")]
    assert store.event_count() == before


def test_dry_run_writes_nothing(store: Store, app: CapaApplication, tmp_path: Path) -> None:
    header, rows = read_csv(_write(tmp_path, CSV))
    before = store.event_count()
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(rows, MAP, date_format=US, dry_run=True, header=header)
    assert (report.imported, report.dry_run) == (3, True)
    assert store.event_count() == before


def test_mapping_errors(store: Store, app: CapaApplication, tmp_path: Path) -> None:
    header, rows = read_csv(_write(tmp_path, CSV))
    with store.acting(app, REPORTER):
        with pytest.raises(InvalidInput, match="not an NC field"):
            app.intake.import_ncs(rows, {"Ref": "reference"}, header=header)
        with pytest.raises(InvalidInput, match="no column"):
            app.intake.import_ncs(rows, {"Nope": "title"}, header=header)
        with pytest.raises(InvalidInput, match="no column gives"):
            app.intake.import_ncs(rows, {}, header=header)


@pytest.mark.skipif(not has_accounts(), reason="this build keeps no user accounts")
def test_an_auditor_cannot_import(store: Store, app: CapaApplication, tmp_path: Path) -> None:
    header, rows = read_csv(_write(tmp_path, CSV))
    before = store.event_count()
    with store.acting(app, AUDITOR), pytest.raises(NotPermitted):
        app.intake.import_ncs(rows, MAP, date_format=US, header=header)
    assert store.event_count() == before


@pytest.mark.parametrize(("raw", "expected"), [
    ("None", ""), (", ", ""), ("  a \t b ", "a b"), ("40,915.00", "40915"), ("1,234.5", "1234.5"),
    ("N/A", ""), ("Crème brûlée", "Crème brûlée"),
])
def test_clean(raw: str, expected: str) -> None:
    assert clean(raw) == expected


@pytest.mark.parametrize(("raw", "layout", "expected"), [
    ("1/28/2024 0:00:00", US, "2024-01-28"), ("06/13/2012", US, "2012-06-13"),
    ("2024-04-05", None, "2024-04-05"), ("20120613", "YYYYMMDD", "2012-06-13"),
])
def test_dates(raw: str, layout: str | None, expected: str) -> None:
    assert parse_day(raw, layout).isoformat() == expected
