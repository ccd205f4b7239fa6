"""`capa demo` builds a store with a year of history and writes a dashboard and an 8D report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from capa.app.store import open_store
from capa.cli.main import main
from tests.support.reading import reading


def test_demo_grows_to_hundreds_of_ncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from capa.app import demo

    db = tmp_path / "demo.db"
    monkeypatch.delenv("CAPA_DB", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["--db", str(db), "--json", "demo"])
    out, err = capsys.readouterr()
    assert done.value.code == 0, err
    files = json.loads(out)["files"]
    dashboard, report = Path(files["dashboard"]), Path(files["report"])
    assert dashboard.parent == report.parent == tmp_path
    assert dashboard.read_text(encoding="utf-8").count("<svg") == 7
    assert report.read_bytes().startswith(b"%PDF-")
    # The demo's quality manager signed last month's audit-trail review (Annex 11 §9).
    assert "Audit trail last reviewed: never" not in dashboard.read_text(encoding="utf-8")
    assert "Audit trail last reviewed: " in dashboard.read_text(encoding="utf-8")

    app = open_store(str(db))
    password = getattr(demo, "DEMO_PASSWORD", None)
    with (app.acting_as(demo.QUALITY_MANAGER, password) if password  # type: ignore[call-arg]
          else app.acting_as(demo.QUALITY_MANAGER)):
        ncs = app.queries.list_records("nc")
        cas = app.queries.list_records("ca")
        overdue = app.queries.overdue()
    assert len(ncs) >= 200
    assert len({v.source for v in ncs}) >= 6
    assert len({v.detected_on[:7] for v in ncs}) >= 6
    assert {"open", "investigated", "planned", "approved", "implemented", "verified",
            "closed"} <= {v.status for v in cas}
    assert {o.kind for o in overdue} == {"action-overdue", "awaiting-verification"}
    # A real year: NCs detected in every month, CAs closed weeks after they opened, each step
    # recorded at the moment it stands for, in order.
    from capa.reports.dashboard import collect

    today = dt.datetime.now(dt.UTC).date()
    figures = collect(app.read_models, today.isoformat())
    assert sum(1 for _, raised, _ in figures.trend if raised) >= 11
    assert sum(closed for _, _, closed in figures.trend) >= 10
    assert figures.mean_days_to_close_ca is not None and figures.mean_days_to_close_ca >= 21
    assert figures.mean_days_to_close_nc is not None and figures.mean_days_to_close_nc >= 7
    whole_year = collect(app.read_models, today.isoformat(),
                         (today - dt.timedelta(days=400)).isoformat())
    assert whole_year.cancelled["ncs"] == 2 and whole_year.totals["ncs"] == len(ncs) - 2
    with reading(app):
        story = app.records.history(json.loads(out)["records"]["ca"])
    # A device maker's store (SPEC §12): the story's CA planned its check for each iteration
    # and closed only after its impact assessment.
    assert app.profile() == "iso13485"
    with reading(app):
        shown = app.records.show(json.loads(out)["records"]["ca"]).model_dump(mode="json")
    assert [(c["iteration"], c["state"]) for c in shown["checks"]] == [
        (1, "not-effective"), (2, "effective")]
    assert [i["iteration"] for i in shown["impacts"]] == [2] and shown["status"] == "closed"
    times = [dt.datetime.fromisoformat(e.time.replace("Z", "+00:00")) for e in story]
    assert times == sorted(times) and (times[-1] - times[0]).days >= 20
    with reading(app):
        first_nc = app.records.history(min(v.id for v in ncs))
    assert (today - dt.datetime.fromisoformat(first_nc[0].time[:10]).date()).days >= 300
    app.close()


def test_the_demo_store_has_its_signing_key_for_the_auditors_commands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from capa.app import demo

    db = tmp_path / "demo.db"
    monkeypatch.delenv("CAPA_DB", raising=False)
    monkeypatch.delenv("CAPA_KEY", raising=False)
    with pytest.raises(SystemExit) as built:
        main(["--db", str(db), "--json", "demo"])
    key = Path(json.loads(capsys.readouterr().out)["key"])
    assert built.value.code == 0
    assert key == tmp_path / "demo.db.key"
    assert key.stat().st_mode & 0o077 == 0
    # A genesis checkpoint of the finished demo, as `capa init` takes one: the log is never empty.
    from capa.audit.checkpoints import CheckpointLog

    assert len(CheckpointLog(tmp_path / "demo.db.checkpoints").notes()) == 1
    monkeypatch.setenv("CAPA_USER", demo.QUALITY_MANAGER)
    monkeypatch.setenv("CAPA_PASSWORD", demo.DEMO_PASSWORD)
    for command in (["audit", "checkpoint"], ["audit", "verify"]):
        with pytest.raises(SystemExit) as done:
            main(["--db", str(db), "--json", *command])
        out, err = capsys.readouterr()
        assert done.value.code == 0, err
    assert json.loads(out)["checkpoints"] == 2  # the demo's genesis checkpoint and this one


def test_a_stale_key_where_the_demo_would_put_its_own_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    (tmp_path / "demo.db.key").write_text("somebody's key\n", encoding="utf-8")
    monkeypatch.delenv("CAPA_DB", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["--db", str(db), "demo"])
    assert done.value.code == 2
    assert "a key already exists" in capsys.readouterr().err
    assert not db.exists()


def test_the_demo_runs_on_a_postgresql_store_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from capa.app import demo
    from tests.support.backends import new_target, store_exists

    target = new_target("postgres", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAPA_DB", raising=False)
    monkeypatch.delenv("CAPA_KEY", raising=False)
    monkeypatch.delenv("CAPA_CHECKPOINTS", raising=False)
    # The key's place is configured, never taken from the current folder (SPEC §9.4).
    with pytest.raises(SystemExit) as unplaced:
        main(["--db", target, "demo"])
    assert unplaced.value.code == 2
    assert "CAPA_KEY" in capsys.readouterr().err
    assert not store_exists(target) and list(tmp_path.iterdir()) == []
    monkeypatch.setenv("CAPA_KEY", "capa-audit.key")
    with pytest.raises(SystemExit) as built:
        main(["--db", target, "--json", "demo"])
    out, err = capsys.readouterr()
    assert built.value.code == 0, err
    document = json.loads(out)
    assert Path(document["key"]) == Path("capa-audit.key")
    assert (tmp_path / "capa-audit.key").exists()
    assert (tmp_path / "capa-audit.checkpoints").exists()
    assert {Path(f).parent for f in document["files"].values()} == {tmp_path}
    monkeypatch.setenv("CAPA_USER", demo.QUALITY_MANAGER)
    monkeypatch.setenv("CAPA_PASSWORD", demo.DEMO_PASSWORD)
    with pytest.raises(SystemExit) as verified:
        main(["--db", target, "--json", "audit", "verify"])
    assert verified.value.code == 0, capsys.readouterr().err
