"""`capa management-review` through the real entry point (SPEC §12; ISO 9001 9.3.2, ISO 13485
5.6.2): the pack in each format, its figures folded from the events of a real store, hostile
text escaped, long and non-Latin names inside the PDF's page, and refusals that write nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from capa.reports.control_chart import c_chart
from capa.reports.management_review import collect_review
from tests.support.cast import (
    AUDITOR,
    OWNER,
    PASSWORD,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    VERIFIER,
)
from tests.support.cli import run_main as run
from tests.support.pdflayout import assert_inside_text_area, pages
from tests.support.reading import reading
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

TODAY = dt.datetime.now(dt.UTC).date()
HOSTILE = "<script>alert(1)</script> ## fake | cell [x](http://evil)"
NON_LATIN = "Nguyễn Thị Thu Hương-Παπαδοπούλου Щербакова-Вишневская"


def _month_start(back: int) -> dt.date:
    months = TODAY.year * 12 + TODAY.month - 1 - back
    return dt.date(months // 12, months % 12 + 1, 1)


START = _month_start(3)


@pytest.fixture
def worked(store: Store, app: CapaApplication) -> Store:
    """Four NCs of one product over the last months (one cancelled), a CA with a hostile title
    owned by someone with a long non-Latin name, verified effective after an extension."""
    with store.acting(app, QUALITY_MANAGER):
        app.identity.add_user("hnguyen", full_name=NON_LATIN, roles=["owner"],
                              password=PASSWORD)
    refs = []
    with store.acting(app, REPORTER):
        for back, day in ((3, 2), (2, 5), (2, 9), (1, 3)):
            refs.append(app.nonconformities.raise_nc(
                title=f"Seal weak {back}-{day}", description="Peel below 8 N",
                source="process", severity="minor", product=f"Pouch {HOSTILE}",
                detected_on=_month_start(back).replace(day=day).isoformat()).id)
    with store.acting(app, QUALITY_MANAGER):
        app.nonconformities.cancel_nc(refs[3], reason="Raised twice")
        for ref in refs[:2]:
            app.nonconformities.assess_nc(ref, impact=3, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title=f"Seal strength {HOSTILE}",
                                            problem="Peel strength low", owner="hnguyen",
                                            ncs=refs[:2]).id
        app.corrective_actions.open_ca(title="Housing cracks", problem="Bosses crack",
                                       owner=OWNER)
    with store.acting(app, "hnguyen"):
        app.corrective_actions.investigate_ca(ca, method="other", root_cause="Worn sealer jaw",
                                              category="machine")
        app.corrective_actions.plan_ca(ca, action="Replace jaw", assignee="hnguyen",
                                       due=(TODAY + dt.timedelta(days=5)).isoformat(),
                                       action_type="corrective")
    with store.acting(app, QUALITY_ENGINEER):
        app.corrective_actions.approve_ca(ca)
        app.corrective_actions.extend_action(ca, "A1", due=(TODAY + dt.timedelta(days=12))
                                             .isoformat(), reason="Spare part late")
    with store.acting(app, "hnguyen"):
        app.corrective_actions.complete_action(ca, "A1", note="Jaw replaced")
    with store.acting(app, VERIFIER):
        app.corrective_actions.verify_ca(ca, effective=True, note="No weak seal in 3 lots")
    return store


def pack(store: Store, user: str, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> tuple[int, str, str]:
    return run(["management-review", "--from", START.isoformat(), "--to", TODAY.isoformat(),
                "--out", str(out), *args], cli_env(store, user), monkeypatch, capsys)


def test_the_figures_come_from_the_events(worked: Store, app: CapaApplication) -> None:
    with reading(app):
        review = collect_review(app, START, TODAY, TODAY)
    assert review.months[0] == START.isoformat()[:7] and len(review.months) == 4
    # Cancelled NCs are left out; the months count by detection date.
    assert review.nc_per_month == [1, 2, 0, 0]
    assert review.ca_per_month == [0, 0, 0, 2]
    assert review.nc_limits == c_chart([1, 2, 0, 0])
    assert [(p, n) for p, n, _ in review.recurring_products] == [(f"Pouch {HOSTILE}", 3)]
    assert [(c, n) for _, c, n, _ in review.recurring_causes] == [("machine", 2)]
    assert (review.effective, review.not_effective, review.effectiveness_rate) == (1, 0, 100.0)
    assert review.items["extensions"] == 1 and review.items["extension_days"] == 7
    assert review.open_total == 2 and set(review.open_by_owner) == {"hnguyen", OWNER}


@pytest.mark.parametrize(("name", "fmt", "magic"), [
    ("pack.pdf", None, b"%PDF-"), ("pack.html", None, b"<!DOCTYPE html>"),
    ("pack.md", None, b"# Management review"), ("pack.txt", "md", b"# Management review")])
def test_each_format_is_written(worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], name: str, fmt: str | None,
                                magic: bytes) -> None:
    out = tmp_path / name
    before = worked.event_count()
    code, stdout, err = pack(worked, AUDITOR, monkeypatch, capsys, out, "--json",
                             *(("--format", fmt) if fmt else ()))
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["out"] == str(out) and doc["bytes"] == out.stat().st_size
    assert out.read_bytes().startswith(magic)
    assert worked.event_count() == before  # a read


def test_markdown_and_html_escape_hostile_titles(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    md, page = tmp_path / "pack.md", tmp_path / "pack.html"
    assert pack(worked, QUALITY_MANAGER, monkeypatch, capsys, md)[0] == 0
    assert pack(worked, QUALITY_MANAGER, monkeypatch, capsys, page)[0] == 0
    text = md.read_text(encoding="utf-8")
    assert "<script>" not in text and "\\<script\\>" in text
    assert "\n## fake" not in text and "[x](http://evil)" not in text
    row = next(line for line in text.splitlines() if "Seal strength" in line)
    assert row.count("|") - row.count("\\|") == 6  # five columns, none injected
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<svg" in html and "UCL" in html


def test_the_pdf_keeps_long_and_non_latin_names_inside_the_page(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pack.pdf"
    assert pack(worked, QUALITY_MANAGER, monkeypatch, capsys, out)[0] == 0
    content = out.read_bytes()
    assert_inside_text_area(content)
    printed = "".join("".join(t.split()) for _, t in pages(content))
    assert "".join(f"{NON_LATIN} (hnguyen)".split()) in printed
    assert "M2Nonconformitiespermonth,withcontrollimits" in printed
    assert "effectivenessrate100.0%" in printed


def test_who_may_write_the_pack(worked: Store, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    for user in (REPORTER, OWNER):
        out = tmp_path / f"{user}.pdf"
        code, _, err = pack(worked, user, monkeypatch, capsys, out)
        assert code == 4 and "may not management-review" in err
        assert not out.exists()


@pytest.mark.parametrize(("start", "end", "words"), [
    (TODAY.isoformat(), "2000-01-01", "is before --from"),
    ("2026-02-30", TODAY.isoformat(), "--from must be a date"),
    ("2026-01-01", "soon", "--to must be a date"),
])
def test_bad_periods_exit_2_and_write_nothing(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], start: str, end: str, words: str) -> None:
    out = tmp_path / "pack.pdf"
    before = worked.event_count()
    code, stdout, err = run(["management-review", "--from", start, "--to", end, "--out",
                             str(out)], cli_env(worked, QUALITY_MANAGER), monkeypatch, capsys)
    assert code == 2 and stdout == ""
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and worked.event_count() == before


def test_an_unknown_extension_or_a_link_is_refused(
        worked: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = pack(worked, QUALITY_MANAGER, monkeypatch, capsys, tmp_path / "pack.doc")
    assert code == 2 and "--format" in err
    target = tmp_path / "kept.pdf"
    target.write_bytes(b"keep")
    link = tmp_path / "pack.pdf"
    link.symlink_to(target)
    code, _, err = pack(worked, QUALITY_MANAGER, monkeypatch, capsys, link)
    assert code == 2 and "symbolic link" in err
    assert target.read_bytes() == b"keep"
