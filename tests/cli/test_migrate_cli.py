"""`capa import` of a legacy register's history (SPEC §10) from the command line, on both back
ends: what the dry run warns about, what history and show say, the refusals (exit 2, nothing
stored), an idempotent re-run, and a store that still verifies, bundle included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Capa

REGISTER = """\
CAPA No,Title,Description,Source,Severity,Detected On,Status,Date Closed,Root Cause,\
Corrective Action,CA Owner,CA Closed On,Effectiveness,Site
Q-101,Cracked housing,Boss cracked,customer-complaint,major,2024-01-10,Closed,2024-03-02,\
Mould too cold,Raised mould temperature,J. Smith,2024-02-20,Effective,Leeds
Q-102,Seal weak,Peel below 8 N,process,minor,2024-02-01,Cancelled,,,,,,,Leeds
"""
MAP = ("--map", "CAPA No=external_ref", "--source-system", "QMS 2019")


def _register(capa: Capa, text: str = REGISTER) -> Path:
    path = capa.folder / "register.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_dry_run_warns_of_ignored_columns_and_writes_nothing(capa: Capa) -> None:
    path = _register(capa)
    before = capa.events()
    done = capa.run("import", str(path), *MAP, "--dry-run")
    assert done.code == 0, done.stderr
    assert "2 would be migrated" in done.stdout
    assert "warning: ignored columns" in done.stdout and "Site" in done.stdout
    assert capa.events() == before


def test_migrate_show_history_rerun_and_verify(capa: Capa) -> None:
    path = _register(capa)
    first = capa.run("--json", "import", str(path), *MAP)
    assert first.code == 0, first.stderr
    report = first.json()
    assert (report["migrated"], report["already_migrated"], report["ignored_columns"]) == (
        2, 0, ["Site"])
    nc = report["first_id"]
    events = capa.events()
    again = capa.run("import", str(path), *MAP)
    assert again.code == 0 and "2 already migrated" in again.stdout
    assert capa.events() == events
    said = (f"Migrated from QMS 2019 (register.csv, row 2) by {capa.quality_manager}: legacy "
            "status closed on 2024-03-02")
    history = capa.run("history", nc)
    # Human history wraps long values; the words, not the line breaks, are what it says.
    assert history.code == 0 and said in " ".join(history.stdout.split())
    shown = capa.run("nc", "show", nc)
    assert shown.code == 0 and said in " ".join(shown.stdout.split())
    assert shown.stdout.index("migration:") < shown.stdout.index("title:")
    assert capa.run("--json", "nc", "show", report["last_id"]).json()["status"] == "cancelled"
    verified = capa.run("audit", "verify")
    assert verified.code == 0, verified.stderr
    bundle = capa.folder / "bundle"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    assert capa.run("audit", "verify-bundle", str(bundle), user=None).code == 0
    script = subprocess.run([sys.executable, "-I", str(capa.root / "scripts" / "verify_bundle.py"),
                             str(bundle)], capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr


def test_a_closing_date_before_detection_is_exit_2_naming_the_row(capa: Capa) -> None:
    path = _register(capa, REGISTER.replace("2024-03-02", "2023-12-31"))
    before = capa.events()
    done = capa.run("import", str(path), *MAP)
    assert done.code == 2
    assert "Date Closed" in done.stdout and "before detected-on 2024-01-10" in done.stdout
    assert "nothing was imported" in done.stderr
    assert capa.events() == before
    assert not capa.run("--json", "nc", "list").json()


def test_an_unknown_source_system_name_cannot_smuggle_escapes(capa: Capa) -> None:
    path = _register(capa)
    done = capa.run("--json", "import", str(path), "--source-system", "QMS\x1b[2J 2019")
    assert done.code == 0, done.stderr
    shown = capa.run("--json", "nc", "show", done.json()["first_id"]).json()
    assert shown["migration"]["system"] == "QMS [2J 2019"


def test_rows_matching_ncs_imported_before_without_history_are_left_as_they_are(
        capa: Capa) -> None:
    plain = capa.folder / "plain.csv"
    plain.write_text("external_ref,title,description,source,severity\n"
                     "Q-101,Cracked housing,Boss cracked,customer-complaint,major\n",
                     encoding="utf-8")
    assert capa.run("import", str(plain)).code == 0
    done = capa.run("--json", "import", str(_register(capa)), *MAP)
    assert done.code == 0, done.stderr
    report = done.json()
    assert (report["migrated"], report["skipped_existing"]) == (1, 1)
    text = capa.run("import", str(_register(capa)), *MAP)
    assert "1 rows match NCs already in the store that were not migrated" in text.stdout
    assert "1 already migrated" in text.stdout


def test_a_bad_constant_for_a_legacy_field_is_exit_2_and_stores_nothing(capa: Capa) -> None:
    path = _register(capa)
    for constant, said in (("status=parked", "not one of open, closed, cancelled"),
                           ("closed_on=31/31/2024", "not a date"),
                           ("ca_closed_on=2999-01-01", "in the future")):
        error = capa.refused("import", str(path), *MAP, "--set", constant, code=2)
        assert said in error["message"] and constant.split("=")[0] in error["message"]


def test_legacy_columns_without_a_status_are_exit_2_saying_how_to_give_one(capa: Capa) -> None:
    path = _register(capa, REGISTER.replace(",Status,", ",Phase,"))
    error = capa.refused("import", str(path), *MAP, code=2)
    assert "no status" in error["message"] and "--map COLUMN=status" in error["message"]


def test_a_reporter_may_import_ncs_but_not_migrate_a_register(capa: Capa) -> None:
    error = capa.refused("import", str(_register(capa)), *MAP, code=4, user=capa.reporter)
    assert "needs the quality role" in error["message"]
