"""`capa import` of the files spreadsheet programs write (SPEC §10): semicolon or tab CSV with a
byte-order mark and CRLF, cp1252 text, .xlsx workbooks with date cells and named sheets; and
dates read one way in the CLI and the import, never guessed. Every refusal is checked for its
exit code and for an unchanged store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from capa.app.application import CapaApplication
from capa.app.spreadsheet import read_table
from capa.domain.dates import parse_day
from capa.domain.errors import InvalidInput
from capa.domain.values import parse_date
from tests.support.cast import QUALITY_MANAGER, REPORTER
from tests.support.cli import run_main
from tests.support.reading import reading
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

HEADER = ["external_ref", "title", "description", "source", "severity", "detected_on"]
ROWS = [["R-1", "Boîtier fissuré", "Fissure après trois semaines, café", "customer-complaint",
         "major", "2026-03-04"],
        ["R-2", "Étiquette erronée", "Lot faux; voir photo", "process", "minor", "2026-02-01"]]
READING = pytest.mark.sqlite_only("reading a file does not depend on the back end")


def run(store: Store, args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], user: str = REPORTER) -> tuple[int, str, str]:
    return run_main(args, cli_env(store, user), monkeypatch, capsys)


def imported(store: Store, path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    code, out, err = run(store, ["--json", "import", str(path), *options], monkeypatch, capsys)
    assert code == 0, err + out
    report: dict[str, Any] = json.loads(out)
    return report


def refused(store: Store, path: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str], *options: str, code: int = 2) -> str:
    """The import is refused with `code` and one line on stderr; nothing is stored."""
    before = store.event_count()
    got, out, err = run(store, ["import", str(path), *options], monkeypatch, capsys)
    assert got == code, err + out
    assert "Traceback" not in err and err.strip()
    assert store.event_count() == before
    return err + out


def ncs(app: CapaApplication) -> dict[str, dict[str, Any]]:
    with reading(app):
        return {str(v.external_ref): v.model_dump() for v in app.queries.list_records("nc")}


def csv_bytes(rows: list[list[str]], delimiter: str, encoding: str, *, bom: bool = False,
              newline: str = "\r\n") -> bytes:
    def cell(text: str) -> str:
        quoted = any(c in text for c in (delimiter, '"', "\n", "\r"))
        return '"' + text.replace('"', '""') + '"' if quoted else text

    text = newline.join(delimiter.join(map(cell, row)) for row in rows) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


@READING
def test_semicolon_csv_with_bom_and_crlf(store: Store, app: CapaApplication, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "excel-fr.csv"
    path.write_bytes(csv_bytes([HEADER, *ROWS], ";", "utf-8", bom=True))
    report = imported(store, path, monkeypatch, capsys)
    assert (report["imported"], report["errors"]) == (2, [])
    got = ncs(app)
    assert got["R-1"]["title"] == "Boîtier fissuré"
    # The semicolon inside a quoted cell stays text, and CRLF leaves no stray carriage return.
    assert got["R-2"]["description"] == "Lot faux; voir photo"
    assert got["R-1"]["detected_on"] == "2026-03-04"


@READING
def test_tab_separated_and_explicit_delimiter(store: Store, app: CapaApplication, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    tabbed = tmp_path / "export.txt"
    tabbed.write_bytes(csv_bytes([HEADER, ROWS[0]], "\t", "utf-8", newline="\n"))
    assert imported(store, tabbed, monkeypatch, capsys)["imported"] == 1
    hinted = tmp_path / "hinted.csv"
    hinted.write_bytes(b"sep=;\r\n" + csv_bytes([HEADER, ["R-3", *ROWS[0][1:]]], ";", "utf-8"))
    assert imported(store, hinted, monkeypatch, capsys)["imported"] == 1
    piped = tmp_path / "export.psv"
    piped.write_bytes(csv_bytes([HEADER, ROWS[1]], "|", "utf-8"))
    assert imported(store, piped, monkeypatch, capsys, "--delimiter", "|")["imported"] == 1
    assert set(ncs(app)) == {"R-1", "R-2", "R-3"}


@READING
def test_cp1252_needs_its_encoding(store: Store, app: CapaApplication, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "legacy.csv"
    # cp1252 has the euro sign and curly quotes where Latin-1 has control codes.
    rows = [HEADER, [*ROWS[0][:2], "Coût 40 € – “urgent”", *ROWS[0][3:]]]
    path.write_bytes(csv_bytes(rows, ";", "cp1252"))
    message = refused(store, path, monkeypatch, capsys)
    assert "legacy.csv is not UTF-8" in message and "--encoding cp1252" in message
    assert "save it as CSV UTF-8" in message
    imported(store, path, monkeypatch, capsys, "--encoding", "cp1252")
    nc = ncs(app)["R-1"]
    assert (nc["title"], nc["description"]) == ("Boîtier fissuré", "Coût 40 € – “urgent”")


@READING
def test_latin1_and_unknown_encoding(store: Store, app: CapaApplication, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(csv_bytes([HEADER, ROWS[1]], ",", "latin-1"))
    assert "--encoding" in refused(store, path, monkeypatch, capsys, "--encoding", "klingon")
    imported(store, path, monkeypatch, capsys, "--encoding", "latin-1")
    assert ncs(app)["R-2"]["title"] == "Étiquette erronée"


@READING
def test_a_tied_header_asks_for_the_delimiter(store: Store, app: CapaApplication, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tied.csv"
    path.write_text("title;description,source;severity,lot\nx;y,process;minor,L1\n",
                    encoding="utf-8")
    assert "--delimiter" in refused(store, path, monkeypatch, capsys)
    for bad in ("ab", "\"", "x"):
        assert "--delimiter takes one character" in refused(
            store, path, monkeypatch, capsys, "--delimiter", bad)


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        sheet.title = name
        first = False
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


@READING
def test_xlsx_with_date_cells_numbers_and_a_named_sheet(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = workbook(tmp_path / "findings.xlsx", {
        "Summary": [["nothing to import here"]],
        "2026 findings": [
            [*HEADER, "lot"],
            ["R-1", "Burr on edge", "Found at final inspection", "process", "minor",
             dt.datetime(2026, 3, 4, 0, 0), 40915.0],
            ["R-2", "Joint – 密封不良 <b>", "Date cell with a time of day", "process", "major",
             dt.datetime(2026, 2, 1, 14, 30), 12],
            [None, None, None, None, None, None, None],  # an empty row in the middle
            ["R-3", "Text date", "ISO typed as text", "supplier", "minor", "2026-01-15", None],
        ]})
    message = refused(store, path, monkeypatch, capsys, "--sheet", "Sheet9")
    assert "no sheet 'Sheet9'" in message and "'Summary', '2026 findings'" in message
    header, rows = read_table(path, sheet="2026 findings")
    # Date cells read as the day alone, whatever time of day the cell also holds.
    assert (header[5], rows[0][5], rows[1][5], rows[1][6]) == (
        "detected_on", "2026-03-04", "2026-02-01", "12")
    report = imported(store, path, monkeypatch, capsys, "--sheet", "2026 findings")
    assert (report["rows"], report["imported"]) == (3, 3)
    got = ncs(app)
    assert (got["R-1"]["detected_on"], got["R-1"]["lot"]) == ("2026-03-04", "40915")
    assert (got["R-2"]["detected_on"], got["R-2"]["lot"]) == ("2026-02-01", "12")
    assert got["R-2"]["title"] == "Joint – 密封不良 <b>"
    assert got["R-3"]["lot"] is None


@READING
def test_first_sheet_by_default_and_csv_options_refused(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = workbook(tmp_path / "book.xlsx", {"Summary": [["nothing to import here"]],
                                             "Data": [HEADER, ROWS[0]]})
    assert "no column gives" in refused(store, path, monkeypatch, capsys)
    assert "CSV files only" in refused(store, path, monkeypatch, capsys, "--encoding", "cp1252")
    csv_path = tmp_path / "plain.csv"
    csv_path.write_bytes(csv_bytes([HEADER, ROWS[0]], ",", "utf-8"))
    assert "workbooks only" in refused(store, csv_path, monkeypatch, capsys, "--sheet", "Data")


@READING
def test_other_spreadsheet_formats_say_what_to_save_as(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    assert "save it as .xlsx" in refused(store, old, monkeypatch, capsys)
    ods = tmp_path / "calc.ods"
    ods.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    assert "OpenDocument" in refused(store, ods, monkeypatch, capsys)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    assert "not a readable .xlsx workbook" in refused(store, broken, monkeypatch, capsys)


def dated(tmp_path: Path, *days: str) -> Path:
    path = tmp_path / "dated.csv"
    rows = [HEADER] + [[f"D-{i}", "Burr", "Edge rough", "process", "minor", day]
                       for i, day in enumerate(days, start=1)]
    path.write_bytes(csv_bytes(rows, ",", "utf-8"))
    return path


@READING
def test_ambiguous_dates_are_refused_with_both_readings(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Today's import read 01/12/2026 as 12 January and refused 13/11/2026 in the same file.
    path = dated(tmp_path, "2026-01-05", "01/12/2025", "13/11/2025")
    before = store.event_count()
    code, out, _ = run(store, ["--json", "import", str(path)], monkeypatch, capsys)
    assert code == 2 and store.event_count() == before
    errors = json.loads(out)["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(3, "detected_on"), (4, "detected_on")]
    assert errors[0]["reason"] == (
        "'01/12/2025' could be 1 December 2025 (DD/MM/YYYY) or 12 January 2025 (MM/DD/YYYY); "
        "pass --date-format DD/MM/YYYY or MM/DD/YYYY")
    assert errors[1]["reason"] == ("'13/11/2025' is not YYYY-MM-DD; pass --date-format "
                                   "DD/MM/YYYY")
    human = refused(store, path, monkeypatch, capsys).splitlines()
    # What a person reads: each refused cell on its line, the reason whole (never cut).
    assert f"row 3, detected_on: {errors[0]['reason']}" in human
    assert f"row 4, detected_on: {errors[1]['reason']}" in human


@READING
def test_a_named_layout_reads_every_date_of_the_file(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = dated(tmp_path, "01/12/2025", "13/11/2025", "2025-10-09")
    # A value that does not fit the named layout is refused, not read another way.
    wrong = refused(store, path, monkeypatch, capsys, "--date-format", "MM/DD/YYYY")
    assert "'13/11/2025' is not a date in the layout MM/DD/YYYY" in wrong
    assert "is not a layout" in refused(store, path, monkeypatch, capsys,
                                        "--date-format", "DD/MM/YY")
    imported(store, path, monkeypatch, capsys, "--date-format", "dd/mm/yyyy")
    days = {ref: nc["detected_on"] for ref, nc in ncs(app).items()}
    assert days == {"D-1": "2025-12-01", "D-2": "2025-11-13", "D-3": "2025-10-09"}


@pytest.mark.parametrize(("value", "layout", "expected"), [
    ("31.12.2025", "DD.MM.YYYY", "2025-12-31"), ("2025/12/31", "YYYY/MM/DD", "2025-12-31"),
    ("12-31-2025", "MM-DD-YYYY", "2025-12-31"), ("1/5/2025 2:30:00 PM", "MM/DD/YYYY", "2025-01-05"),
    ("20251231", "YYYYMMDD", "2025-12-31"), ("2025-12-31T23:59:59Z", None, "2025-12-31"),
    ("2025-1-5", None, "2025-01-05"), ("2025-1-5", "DD/MM/YYYY", "2025-01-05"),
])
def test_layouts(value: str, layout: str | None, expected: str) -> None:
    assert parse_day(value, layout).isoformat() == expected


@pytest.mark.parametrize("value", ["2025-02-30", "31/31/2025", "2025-13-01", "yesterday",
                                   "12/31/25", "٢٠٢٥-٠١-٠٥", "2025-01-05\x1b[31m", "9" * 5000])
def test_what_is_never_a_date(value: str) -> None:
    with pytest.raises(ValueError) as refusal:
        parse_day(value, "MM/DD/YYYY")
    assert len(str(refusal.value)) < 200  # a hostile value is not echoed whole


@pytest.mark.parametrize("value", ["2025-01-05", "2025-1-5", "01/12/2025", "13/11/2025",
                                   "5.1.2025", "2025-02-30", "20250105", " 2025-01-05 "])
def test_the_cli_and_the_import_agree(value: str) -> None:
    """Both read a value through the same parser: the same day, or both refuse."""
    try:
        imported_day: dt.date | None = parse_day(value)
    except ValueError:
        imported_day = None
    try:
        option_day: dt.date | None = parse_date(value, "due")
    except InvalidInput as exc:
        option_day = None
        assert "YYYY-MM-DD" in str(exc) and "--date-format" not in str(exc)
    assert imported_day == option_day


@READING
def test_cli_option_and_import_cell_agree_end_to_end(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("2025-1-5", "01/12/2025"):
        raise_args = ["--json", "nc", "raise", "--title", "Burr", "--description", "Edge",
                      "--source", "process", "--severity", "minor", "--detected-on", value]
        cli_code, out, _ = run(store, raise_args, monkeypatch, capsys)
        import_code, _, _ = run(store, ["import", str(dated(tmp_path, value))],
                                monkeypatch, capsys)
        assert cli_code == import_code, value
    with reading(app):
        days = sorted(nc.detected_on for nc in app.queries.list_records("nc"))
    assert days == ["2025-01-05", "2025-01-05"]


def test_detected_on_is_amended_with_a_reason(store: Store, app: CapaApplication,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = dated(tmp_path, "2025-01-12")
    ref = imported(store, path, monkeypatch, capsys)["first_id"]
    amend = ["nc", "amend", ref, "--field", "detected_on", "--reason",
             "The legacy sheet wrote 01/12/2025 meaning 1 December"]
    before = store.event_count()
    for bad, words in (("12/01/2025", "could be"), ("2999-01-01", "in the future"),
                       ("2025-01-12", "already")):
        code, _, err = run(store, [*amend, "--value", bad], monkeypatch, capsys,
                           user=QUALITY_MANAGER)
        assert code == 2 and words in err, err
    assert store.event_count() == before
    code, _, err = run(store, [*amend, "--value", "2025-12-01"], monkeypatch, capsys,
                       user=QUALITY_MANAGER)
    assert code == 0, err
    with reading(store.app()):
        assert store.app().records.show(ref).model_dump()["detected_on"] == "2025-12-01"
    assert ncs(store.app())["D-1"]["detected_on"] == "2025-12-01"  # the read table follows
    code, out, _ = run(store, ["--json", "history", ref, "--diff"], monkeypatch, capsys)
    change = json.loads(out)[-1]
    assert change["changes"] == [{"field": "detected_on", "old": "2025-01-12",
                                  "new": "2025-12-01"}]
    assert "1 December" in change["reason"]


@READING
def test_refusals_escape_what_the_file_holds(store: Store, app: CapaApplication, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hostile.csv"
    header = [*HEADER[:5], "When\x1b[2J"]
    path.write_bytes(csv_bytes([header, ["H-1", "T", "D", "process", "minor", "\x1b]0;pwn\x07"]],
                               ",", "utf-8"))
    shown = refused(store, path, monkeypatch, capsys, "--map", "When\x1b[2J=detected_on")
    assert "\x1b" not in shown and "\x07" not in shown
    assert "row 2, When\\x1b[2J: " in shown


@READING
def test_read_rows_written_by_the_import_pass_the_audit(
        store: Store, app: CapaApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.csv"
    rows = [HEADER] + [[f"M-{i}", f"Titre « {i} » – 検査", f'Desc "{i}"\nligne 2', "process",
                        "minor", "2025-1-5"] for i in range(40)]
    path.write_bytes(csv_bytes(rows, ";", "utf-8", bom=True))
    imported(store, path, monkeypatch, capsys)
    code, out, err = run(store, ["audit", "verify"], monkeypatch, capsys, user=QUALITY_MANAGER)
    assert code == 0, err + out
