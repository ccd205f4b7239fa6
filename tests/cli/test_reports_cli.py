"""`capa import`, `export`, `report`, `dashboard` and `readmodels rebuild` through the real entry
point: exit codes, output documents, and nothing stored on refusal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from tests.support.cast import AUDITOR, QUALITY_MANAGER, REPORTER
from tests.support.cli import run_main as run
from tests.support.stores import Store, app, cli_env, has_accounts, store

__all__ = ["app", "store"]

CSV = """\
external_ref,title,description,source,severity,detected_on
X-1,Burr on edge,Found at final inspection,process,minor,2024-02-01
X-2,Wrong label,"Label shows
wrong lot",customer-complaint,major,2024-02-03
"""


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "ncs.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_import_then_list_then_export(store: Store, app: CapaApplication, csv_file: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, REPORTER)
    code, out, _ = run(["--json", "import", str(csv_file)], env, monkeypatch, capsys)
    assert code == 0
    assert json.loads(out)["imported"] == 2
    code, out, _ = run(["nc", "list", "--status", "open", "--json"], env, monkeypatch, capsys)
    listed = json.loads(out)
    assert [r["external_ref"] for r in listed] == ["X-1", "X-2"]
    code, out, _ = run(["--json", "import", str(csv_file)], env, monkeypatch, capsys)
    assert (code, json.loads(out)["skipped_existing"]) == (0, 2)

    events = tmp_path / "events.jsonl"
    code, _, _ = run(["export", "--format", "jsonl", "--out", str(events)], env, monkeypatch,
                     capsys)
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert code == 0 and lines[-1]["type"] == "Nonconformity.Raised"
    assert [e["position"] for e in lines] == sorted(e["position"] for e in lines)
    assert lines[-1]["state"]["external_ref"] == "X-2"
    assert {"position", "record", "version", "type", "time", "actor", "state"} <= set(lines[0])
    code, out, _ = run(["export", "--format", "csv"], env, monkeypatch, capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["external_ref"] for r in rows] == ["X-1", "X-2"]
    assert rows[1]["title"] == "Wrong label"


def test_import_refusals_write_nothing(store: Store, app: CapaApplication, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, REPORTER)
    before = store.event_count()
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV + "X-3,,empty title,process,minor,2024-01-01\n", encoding="utf-8")
    code, out, err = run(["--json", "import", str(bad)], env, monkeypatch, capsys)
    assert code == 2
    assert json.loads(out)["errors"] == [{"row": 4, "column": "title",
                                          "reason": "title is empty"}]
    assert json.loads(err)["error"]["code"] == 2
    code, _, err = run(["import", str(bad), "--map", "title=nonsense"], env, monkeypatch, capsys)
    assert code == 2 and "not an NC field" in err
    code, _, err = run(["import", str(tmp_path / "missing.csv")], env, monkeypatch, capsys)
    assert code == 2
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("title,description,source,severity\nCaf\xe9,d,process,minor\n"
                      .encode("latin-1"))
    code, _, err = run(["import", str(latin)], env, monkeypatch, capsys)
    assert code == 2 and "UTF-8" in err
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    for constant, reason in (("severity=huge", "not one of"), ("source=garage", "not one of"),
                             ("detected_on=2999-01-01", "in the future"),
                             ("title= ", "title is empty")):
        code, _, err = run(["import", str(good), "--set", constant], env, monkeypatch, capsys)
        assert code == 2 and f"--set {constant.split('=')[0]}=" in err and reason in err, err
    if has_accounts():
        code, _, _ = run(["import", str(bad)], cli_env(store, AUDITOR), monkeypatch, capsys)
        assert code == 4
    assert store.event_count() == before


def test_dry_run_and_missing_store(store: Store, app: CapaApplication, csv_file: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, REPORTER)
    before = store.event_count()
    code, out, _ = run(["import", str(csv_file), "--dry-run"], env, monkeypatch, capsys)
    assert code == 0 and "would import 2" in out
    assert store.event_count() == before
    code, _, _ = run(["--db", str(tmp_path / "none.db"), "import", str(csv_file)], env,
                     monkeypatch, capsys)
    assert code == 3


def test_rebuild_command(store: Store, app: CapaApplication, csv_file: Path,
                         monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, QUALITY_MANAGER)
    run(["import", str(csv_file)], cli_env(store, REPORTER), monkeypatch, capsys)
    _, before, _ = run(["nc", "list", "--json"], env, monkeypatch, capsys)
    code, out, _ = run(["--json", "readmodels", "rebuild"], env, monkeypatch, capsys)
    result: dict[str, Any] = json.loads(out)
    assert code == 0 and result["nonconformities"] == 2
    _, after, _ = run(["nc", "list", "--json"], env, monkeypatch, capsys)
    assert after == before


def test_report_and_dashboard_commands(store: Store, app: CapaApplication, csv_file: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, REPORTER)
    _, stdout, _ = run(["--json", "import", str(csv_file)], env, monkeypatch, capsys)
    first_nc = json.loads(stdout)["first_id"]
    out = tmp_path / "r.md"
    code, stdout, _ = run(["--json", "report", first_nc, "--format", "md", "--out",
                           str(out)], env, monkeypatch, capsys)
    assert code == 0 and json.loads(stdout)["out"] == str(out)
    assert out.read_text(encoding="utf-8").startswith("# 8D report NC-")
    code, _, _ = run(["report", "NC-2026-9999", "--format", "md", "--out",
                      str(tmp_path / "x.md")], env, monkeypatch, capsys)
    assert code == 3 and not (tmp_path / "x.md").exists()
    code, _, _ = run(["report", first_nc, "--format", "doc", "--out",
                      str(tmp_path / "x.doc")], env, monkeypatch, capsys)
    assert code == 2
    page = tmp_path / "d.html"
    code, _, _ = run(["dashboard", "--out", str(page)], env, monkeypatch, capsys)
    assert code == 0 and page.read_text(encoding="utf-8").count("<svg") == 7
