"""`capa demo` builds a store with a year of history and writes a dashboard and an 8D report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capa.app.store import open_store
from capa.cli.main import main


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
    assert "Plotly.newPlot" in dashboard.read_text(encoding="utf-8")
    assert report.read_bytes().startswith(b"%PDF-")

    app = open_store(str(db))
    password = getattr(demo, "DEMO_PASSWORD", None)
    with (app.acting_as(demo.QUALITY_MANAGER, password) if password  # type: ignore[call-arg]
          else app.acting_as(demo.QUALITY_MANAGER)):
        ncs = app.list_records("nc")
        cas = app.list_records("ca")
        overdue = app.overdue()
    assert len(ncs) >= 200
    assert len({v.source for v in ncs}) >= 6
    assert len({v.detected_on[:7] for v in ncs}) >= 6
    assert {"open", "investigated", "planned", "approved", "implemented", "verified",
            "closed"} <= {v.status for v in cas}
    assert {o.kind for o in overdue} == {"action-overdue", "awaiting-verification"}
    app.close()
