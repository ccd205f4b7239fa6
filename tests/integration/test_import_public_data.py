"""Import of real regulators' data (../shared/data/public, see its PROVENANCE.md) through the
command line with --map: multi-line cells, accents, `None` and `, ` placeholders, thousands
separators and US dates, and idempotence on the files' own reference numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from capa.cli.main import main
from tests.support.cast import REPORTER
from tests.support.reading import reading
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

PUBLIC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "public"

pytestmark = pytest.mark.skipif(
    not PUBLIC.is_dir(), reason=f"public data folder {PUBLIC} is absent (it sits beside the "
                                "project checkout, never inside it)")

FAA = ["--map", "OperatorControlNumber=external_ref", "--map", "PartName=title",
       "--map", "PartCondition=title", "--map", "Discrepancy=description",
       "--map", "DifficultyDate=detected_on", "--map", "PartNumber=product",
       "--set", "title=Landing gear service difficulty", "--set", "source=product",
       "--set", "severity=major", "--date-format", "MM/DD/YYYY"]
SAFETY_GATE = ["--map", "alert_number=external_ref", "--map", "product_name=title",
               "--map", "brand=title", "--map", "risk_description=description",
               "--map", "measures_authorities=description", "--map", "product_description=product",
               "--set", "description=No risk description published",
               "--set", "source=regulatory-inspection", "--set", "severity=major"]
TRANSPORT_CANADA = ["--map", "RECALL_NUMBER_NUM=external_ref", "--map", "SYSTEM_TYPE_ETXT=title",
                    "--map", "MAKE_NAME_NM=title", "--map", "MODEL_NAME_NM=product",
                    "--map", "COMMENT_ETXT=description", "--map", "COMMENT_FTXT=description",
                    "--map", "UNIT_AFFECTED_NBR=lot", "--map", "RECALL_DATE_DTE=detected_on",
                    "--set", "source=regulatory-inspection", "--set", "severity=major"]
OPENFDA = ["--map", "recall_ref=external_ref", "--map", "recalling-firm=title",
           "--map", "reason-for-recall=title", "--map", "product-description=description",
           "--map", "classification=severity", "--map", "report-date=detected_on",
           "--set", "title=FDA enforcement report", "--set", "source=regulatory-inspection",
           "--date-format", "MM/DD/YYYY"]


def _import(store: Store, path: Path, options: list[str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    for key, value in cli_env(store, REPORTER).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as done:
        main(["--json", "import", str(path), *options])
    out, err = capsys.readouterr()
    assert done.value.code == 0, err + out[-3000:]
    report: dict[str, object] = json.loads(out)
    return report


def _ncs(app: CapaApplication) -> dict[str, dict[str, object]]:
    with reading(app):
        return {str(v.external_ref): v.model_dump() for v in app.queries.list_records("nc")}


def test_faa_service_difficulty_reports(store: Store, app: CapaApplication,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = PUBLIC / "faa_sdr_b737_landing_gear_2024_2025.csv"
    report = _import(store, path, FAA, monkeypatch, capsys)
    assert (report["rows"], report["imported"], report["errors"]) == (491, 491, [])
    nc = _ncs(app)["DALA2024012901308"]
    assert (nc["title"], nc["detected_on"], nc["product"]) == (
        "BRAKE ASSY - DAMAGED", "2024-01-28", "217401")
    again = _import(store, path, FAA, monkeypatch, capsys)
    # Only the rows that carry no operator control number can come in twice.
    assert again["skipped_existing"] == 491 - int(str(again["without_external_ref"]))


def test_eu_safety_gate_alerts(store: Store, app: CapaApplication,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = PUBLIC / "eu_safety_gate_alerts.csv"
    report = _import(store, path, SAFETY_GATE, monkeypatch, capsys)
    assert report["rows"] == 202 and report["errors"] == []
    nc = _ncs(app)["A12/00328/22"]
    assert nc["title"] == "Passenger car - Opel" and nc["product"] == "Insignia"
    assert "\n" in str(nc["description"])  # multi-line cells keep their line breaks
    # `None` and `, ` are placeholders, never values.
    assert all(v["description"] not in ("None", ",") for v in _ncs(app).values())


def test_transport_canada_recalls(store: Store, app: CapaApplication,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = PUBLIC / "transport_canada_vehicle_recalls.csv"
    report = _import(store, path, TRANSPORT_CANADA, monkeypatch, capsys)
    assert (report["rows"], report["imported"], report["skipped_duplicate"]) == (2029, 224, 1805)
    nc = _ncs(app)["2014299"]
    assert nc["lot"] == "40915" and nc["detected_on"] == "2014-07-16"
    assert "gonflable" in str(nc["description"]) and "é" in str(nc["description"])
    again = _import(store, path, TRANSPORT_CANADA, monkeypatch, capsys)
    assert (again["imported"], again["skipped_existing"]) == (0, 2029)


def test_openfda_enforcement_reports(store: Store, app: CapaApplication, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = (PUBLIC / "openfda_enforcement_reports.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in lines.splitlines() if line.strip()]
    converted = tmp_path / "openfda.csv"
    columns = sorted({k for r in records for k in r}) + ["recall_ref"]
    with converted.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for index, record in enumerate(records, start=1):
            # The sample carries no recall number; its position in the file stands in for one.
            writer.writerow({**record, "recall_ref": f"openfda-{index}"})
    report = _import(store, converted, OPENFDA, monkeypatch, capsys)
    assert (report["imported"], report["errors"]) == (72, [])
    severities = {v["severity"] for v in _ncs(app).values()}
    assert severities <= {"critical", "major", "minor"} and "critical" in severities
    assert _ncs(app)["openfda-1"]["detected_on"] == "2012-06-13"


def test_eu_safety_gate_alerts_as_excel_writes_csv(store: Store, app: CapaApplication,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The extract as Excel saves "CSV" in much of Europe: semicolons, a byte-order mark, CRLF."""
    with (PUBLIC / "eu_safety_gate_alerts.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    converted = tmp_path / "safety_gate_excel.csv"
    with converted.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(rows)
    assert converted.read_bytes().startswith(b"\xef\xbb\xbfalert_number;")
    report = _import(store, converted, SAFETY_GATE, monkeypatch, capsys)
    assert (report["rows"], report["errors"]) == (202, [])
    nc = _ncs(app)["A12/00328/22"]
    assert nc["title"] == "Passenger car - Opel" and nc["product"] == "Insignia"
    description = str(nc["description"])
    assert "\n" in description and "\r" not in description


def test_transport_canada_recalls_as_a_workbook(store: Store, app: CapaApplication,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The recalls as an .xlsx sheet with real date cells and numeric unit counts."""
    import datetime as dt

    from openpyxl import Workbook

    with (PUBLIC / "transport_canada_vehicle_recalls.csv").open(encoding="utf-8",
                                                               newline="") as handle:
        records = list(csv.DictReader(handle))
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Read me"
    notes.append(["Vehicle recalls, last 60 days"])
    sheet = book.create_sheet("Recalls")
    columns = list(records[0])
    sheet.append(columns)
    for record in records:
        cells: list[object] = [record[c] for c in columns]
        cells[columns.index("RECALL_DATE_DTE")] = dt.datetime.fromisoformat(
            record["RECALL_DATE_DTE"])
        units = record["UNIT_AFFECTED_NBR"].replace(",", "")
        cells[columns.index("UNIT_AFFECTED_NBR")] = float(units) if units else None
        sheet.append(cells)
    path = tmp_path / "recalls.xlsx"
    book.save(path)
    report = _import(store, path, [*TRANSPORT_CANADA, "--sheet", "Recalls"], monkeypatch,
                     capsys)
    assert (report["rows"], report["imported"], report["skipped_duplicate"]) == (2029, 224, 1805)
    nc = _ncs(app)["2014299"]
    assert nc["lot"] == "40915" and nc["detected_on"] == "2014-07-16"
    assert "gonflable" in str(nc["description"]) and "é" in str(nc["description"])
