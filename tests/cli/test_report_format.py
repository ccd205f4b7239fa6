"""`capa report` takes its format from --out's extension when --format is absent; an extension
that names no format is refused (exit 2) before anything is read or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from tests.support.cast import REPORTER
from tests.support.cli import run_main as run
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

MAGIC = {"pdf": b"%PDF-", "md": b"# 8D report ", "html": b"<!DOCTYPE html>"}


@pytest.fixture
def nc(store: Store, app: CapaApplication) -> str:
    with store.acting(app, REPORTER):
        return app.nonconformities.raise_nc(title="Burr on edge", description="Final inspection",
                                            source="process", severity="minor").id


@pytest.mark.sqlite_only("argument handling; the back end plays no part")
def test_format_comes_from_the_extension(store: Store, nc: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    env = cli_env(store, REPORTER)
    for name, fmt in (("r.pdf", "pdf"), ("R.PDF", "pdf"), ("r.md", "md"),
                      ("r.markdown", "md"), ("r.html", "html"), ("r.htm", "html")):
        out = tmp_path / name
        code, stdout, err = run(["--json", "report", nc, "--out", str(out)], env, monkeypatch,
                                capsys)
        assert code == 0, err
        assert json.loads(stdout)["format"] == fmt
        assert out.read_bytes().startswith(MAGIC[fmt]), name


@pytest.mark.sqlite_only("argument handling; the back end plays no part")
def test_format_given_wins_over_the_extension(store: Store, nc: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.txt"
    code, _, _ = run(["report", nc, "--format", "md", "--out", str(out)],
                     cli_env(store, REPORTER), monkeypatch, capsys)
    assert code == 0 and out.read_bytes().startswith(MAGIC["md"])


@pytest.mark.sqlite_only("argument handling; the back end plays no part")
@pytest.mark.parametrize("name", ["report.txt", "report", "report.pdf.bak", "report.docx"])
def test_unknown_extension_without_format_is_refused(store: Store, nc: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     name: str) -> None:
    events = store.event_count()
    before = sorted(tmp_path.iterdir())
    out = tmp_path / name
    code, stdout, err = run(["report", nc, "--out", str(out)], cli_env(store, REPORTER),
                            monkeypatch, capsys)
    assert code == 2
    assert not out.exists() and sorted(tmp_path.iterdir()) == before
    assert store.event_count() == events, "nothing stored"
    assert stdout == ""
    assert len(err.strip().splitlines()) == 1 and "--format" in err and "Traceback" not in err
