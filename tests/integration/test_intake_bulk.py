"""The bulk import path writes the very events the aggregate path writes, and the read tables it
leads to are the ones folding those events gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from capa.app import intake
from capa.app.application import CapaApplication
from capa.app.import_rows import read_csv, validate_rows
from capa.domain.nonconformity import NC_FIELDS, Nonconformity
from capa.domain.record import actor_id, record_hex, record_uuid
from capa.readmodels import projection
from tests.support.cast import QUALITY_ENGINEER, REPORTER
from tests.support.reading import reading
from tests.support.stores import Store, app, store

__all__ = ["app", "store"]

CSV = """\
external_ref,title,description,source,severity,product,lot,detected_on
E-1,Cracked housing,"Boss cracked
after three weeks, café customer",customer-complaint,Class II,P-7,L00012,1/28/2024 0:00:00
E-2,Seal weak,Peel below 8 N,process,critical,None,,03/02/2024
E-3,Label smudged,Print head dirty,supplier,low,P-9,"40,915.00",
E-4,"Gauge ""GX-2"" reads C:\\temp\\x","Tab\there, bell\a, \U0001f527 </script>",product,minor,,,
"""


def _rows(tmp_path: Path) -> list[dict[str, str | None]]:
    path = tmp_path / "in.csv"
    path.write_text(CSV, encoding="utf-8")
    header, rows = read_csv(path)
    columns = intake.resolve_columns(header, {}, {})
    import datetime as dt

    valid, errors = validate_rows(rows, columns, {}, dt.date(2026, 6, 1), header=header,
                                  date_format="MM/DD/YYYY")
    assert errors == []
    return valid


def _decoded(app: CapaApplication, state: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = app.mapper.transcoder.decode(state)
    decoded.pop("timestamp")
    return decoded


def test_bulk_events_are_the_events_raising_each_nc_records(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    valid = _rows(tmp_path)
    refs = [f"NC-2026-{n:04d}" for n in range(1, len(valid) + 1)]
    columns = {name: [row[name] for row in valid] for name in NC_FIELDS}
    bulk = intake.raised_events(app, refs, columns, REPORTER)
    token = actor_id.set(REPORTER)
    try:
        for ref, values, stored in zip(refs, valid, bulk, strict=True):
            nc = Nonconformity.raise_new(
                ref=ref, reported_by=REPORTER, title=values["title"] or "",
                description=values["description"] or "", source=values["source"] or "",
                severity=values["severity"] or "", detected_on=values["detected_on"] or "",
                product=values["product"], lot=values["lot"],
                external_ref=values["external_ref"])
            (expected,) = [app.mapper.to_stored_event(e) for e in nc.collect_events()]
            record_id, version, topic, state = stored
            assert (UUID(str(record_id)), version, topic) == (
                expected.originator_id, expected.originator_version, expected.topic)
            assert _decoded(app, state) == _decoded(app, expected.state)
    finally:
        actor_id.reset(token)


def test_imported_ncs_read_and_change_like_any_other(store: Store, app: CapaApplication,
                                                      tmp_path: Path) -> None:
    valid = _rows(tmp_path)
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(valid, {})
    assert (report.imported, report.first_id, report.last_id) == (4, "NC-2026-0001",
                                                                   "NC-2026-0004")
    with reading(store.app()):
        fourth = store.app().records.show("NC-2026-0004").model_dump()
    assert fourth["title"] == 'Gauge "GX-2" reads C:\\temp\\x'
    assert fourth["description"] == "Tab here, bell\a, \U0001f527 </script>"
    reopened = store.app()
    with reading(reopened):
        first = reopened.records.show("NC-2026-0001").model_dump()
    assert (first["description"], first["severity"], first["reported_by"], first["status"]) == (
        "Boss cracked\nafter three weeks, café customer", "major", REPORTER, "open")
    with store.acting(reopened, QUALITY_ENGINEER):
        reopened.nonconformities.contain_nc("NC-2026-0002", action="Quarantined lot",
                                            disposition="none")
    with reading(reopened):
        assert reopened.records.show("NC-2026-0002").model_dump()["status"] == "contained"
        steps = reopened.records.history("NC-2026-0002")
    assert [s.actor for s in steps] == [REPORTER, QUALITY_ENGINEER]


@pytest.mark.parametrize("ref", ["NC-2026-0001", "NC-2031-123456", "Überprüfung-ü"])
def test_record_hex_is_the_record_uuid_in_hex(ref: str) -> None:
    assert record_hex(ref) == record_uuid(ref).hex


def test_read_rows_from_raised_events_equal_the_rows_folding_gives(
        store: Store, app: CapaApplication, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    valid = _rows(tmp_path)
    with store.acting(app, REPORTER):
        app.intake.import_ncs(valid, {})
        app.nonconformities.raise_nc(title="Burr on edge", description="Found at deburr",
                                     source="process",
                                     severity="minor")
    query = "SELECT * FROM nc_summary ORDER BY sort_key"
    app.read_models.catch_up()
    direct = store.rows(query)
    assert len(direct) == 5
    monkeypatch.setattr(projection, "_raised_topic", lambda: "no topic takes the short way")
    app.read_models.rebuild()
    folded = store.rows(query)
    assert direct == folded


def test_a_large_import_lands_whole(store: Store, app: CapaApplication,
                                    tmp_path: Path) -> None:
    before = store.event_count()
    lines = ["external_ref,title,description,source,severity"]
    lines += [f"L-{i},Burr {i},\"Edge \"\"B\"\" rough, lot {i}\",process,minor"
              for i in range(2500)]
    path = tmp_path / "large.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    header, rows = read_csv(path)
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(rows, {}, header=header)
        again = app.intake.import_ncs(rows, {}, header=header)
    assert (report.imported, again.imported, again.skipped_existing) == (2500, 0, 2500)
    assert store.event_count() == before + 2500
    reopened = store.app()
    with reading(reopened):
        assert len(reopened.queries.list_records("nc")) == 2500
        last = reopened.records.show(report.last_id or "").model_dump()
    assert (last["external_ref"], last["description"]) == ("L-2499", 'Edge "B" rough, lot 2499')


@pytest.mark.sqlite_only("the read tables are written in the import's transaction on SQLite")
def test_an_import_writes_its_read_rows_as_the_projection_would(
        store: Store, app: CapaApplication, tmp_path: Path) -> None:
    lines = ["external_ref,title,description,source,severity,product,lot,detected_on"]
    lines += [f"Q-{i},Burr {i},\"Edge, \"\"B\"\" – café {i}\",process,minor,"
              f"{'P-1' if i % 2 else ''},,2026-01-0{1 + i % 9}" for i in range(30)]
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    header, rows = read_csv(path)
    with store.acting(app, REPORTER):
        app.queries.list_records("nc")  # the read tables are up to date before the import
        app.intake.import_ncs(rows, {}, header=header)
    # Written with the events: the tracked position already covers them, nothing to catch up.
    (position,) = store.rows("SELECT position FROM rm_tracking")[0]
    (last,) = store.rows("SELECT MAX(rowid) FROM stored_events")[0]
    assert position == last
    written = store.rows("SELECT * FROM nc_summary ORDER BY id")
    assert len(written) == 30
    app.read_models.rebuild()
    assert store.rows("SELECT * FROM nc_summary ORDER BY id") == written


HOSTILE = ['=HYPERLINK("http://x","y")', '<script>alert(1)</script> **bold** [a](b)',
           "\x1b[31mred\x1b[0m", 'quote " and back\\slash', "line\nbreak\ttab",
           "Überprüfung ü – 检查 – проверка – \u2028 \U0001f600", "w" * 5000]


@pytest.mark.parametrize("value", HOSTILE)
def test_shared_event_json_is_what_a_json_encoder_writes(value: str) -> None:
    # Several rows so that a value repeats (escaped once for the column) or does not.
    fields: dict[str, list[str | None]] = {name: [value, value, "x", value]
                                           for name in NC_FIELDS}
    fields["product"] = [None, value, None, "P-1"]
    members = intake.raised_fields_json(fields)
    for index, text in enumerate(members):
        ordered = {name: fields[name][index] for name in ("title", "description", "source",
                                                          "severity", "product", "lot",
                                                          "external_ref", "detected_on")}
        assert "{" + text + "}" == json.dumps(ordered, ensure_ascii=False,
                                              separators=(",", ":"))
