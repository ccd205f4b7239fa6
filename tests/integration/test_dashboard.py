"""The KPI dashboard (SPEC §10 "Dashboard"): its figures on both back ends (cancelled records
left out, every month of the period, breakdowns by severity, risk level and owner, the period
filter), its size, its print stylesheet, that it loads nothing from the network, hostile text,
and the command's refusals."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capa.app.application import CapaApplication
from capa.domain.errors import InvalidInput
from capa.reports.dashboard import Dashboard, collect
from capa.reports.dashboard_html import MAX_BARS, OVERDUE_ROWS, render_html
from tests.cli.test_reports_cli import run
from tests.support.cast import OWNER, QUALITY_ENGINEER, QUALITY_MANAGER, REPORTER
from tests.support.stores import Store, app, cli_env, store

__all__ = ["app", "store"]

LIMIT = 1_500_000
HEADER = ["external_ref", "title", "description", "source", "severity", "product",
          "detected_on"]


def _row(ref: str, source: str, severity: str, detected: str, product: str = "IP-200",
         title: str = "Burr on edge") -> dict[str, str]:
    return {"external_ref": ref, "title": title, "description": "Found at final inspection",
            "source": source, "severity": severity, "product": product, "detected_on": detected}


def _import(store: Store, app: CapaApplication, rows: list[dict[str, str]]) -> list[str]:
    with store.acting(app, REPORTER):
        report = app.intake.import_ncs(rows, {}, header=HEADER)
    prefix, first = str(report.first_id).rsplit("-", 1)
    return [f"{prefix}-{int(first) + i:04d}" for i in range(report.imported)]


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _first_half_of_2026(store: Store, app: CapaApplication) -> list[str]:
    refs = _import(store, app, [
        _row("J1", "process", "minor", "2026-01-10"),
        _row("J2", "supplier", "major", "2026-01-20"),
        _row("A1", "process", "critical", "2026-04-05"),
        _row("A2", "customer-complaint", "major", "2026-04-06"),  # cancelled below
        _row("D0", "internal-audit", "minor", "2025-12-31"),  # before the period
        _row("L1", "external-audit", "minor", "2026-07-01"),  # after it
    ])
    with store.acting(app, QUALITY_MANAGER):
        app.nonconformities.assess_nc(refs[0], impact=4, likelihood=4, capa_required=False,
                                      rationale="Isolated, reworked")
        app.nonconformities.assess_nc(refs[1], impact=1, likelihood=2, capa_required=True)
        app.nonconformities.cancel_nc(refs[3], reason="Duplicate of a complaint already raised")
    return refs


def test_period_months_cancelled_and_breakdowns(store: Store, app: CapaApplication) -> None:
    _first_half_of_2026(store, app)
    d = collect(app.read_models, _today(), "2026-01-01", "2026-06-30")
    assert (d.start, d.end) == ("2026-01-01", "2026-06-30")
    # Every month of the period, empty ones as zero; the cancelled April NC is not counted.
    assert d.trend == [("2026-01", 2, 0), ("2026-02", 0, 0), ("2026-03", 0, 0),
                       ("2026-04", 1, 0), ("2026-05", 0, 0), ("2026-06", 0, 0)]
    assert d.pareto_source == [("process", 2), ("supplier", 1)]
    assert d.by_severity == [("critical", 1), ("major", 1), ("minor", 1)]
    assert d.by_risk == [("low", 1), ("high", 1), ("not assessed", 1)]
    assert d.totals["ncs"] == 3 and d.cancelled == {"ncs": 1, "cas": 0}
    # Open NCs are as of today, whatever the period: five are open, the cancelled one is not.
    assert d.totals["open_ncs"] == 5 and sum(d.open_nc_ages.values()) == 5
    page = render_html(d, "Northwind")
    assert "Cancelled records are left out" in page and "1 NCs and 0 CAs cancelled" in page


def test_read_tables_of_the_earlier_shape_are_rebuilt_with_risk_levels(
        store: Store, app: CapaApplication) -> None:
    # Read tables as the release before wrote them: no risk_level column, schema version 1.
    # A store opened by this release rebuilds them before it answers, and verify checks them.
    from capa.audit.caches import check_caches

    refs = _first_half_of_2026(store, app)
    assert collect(app.read_models, _today(), "2026-01-01", "2026-06-30").by_risk == [
        ("low", 1), ("high", 1), ("not assessed", 1)]
    store.rows("ALTER TABLE nc_summary DROP COLUMN risk_level")
    store.rows("UPDATE rm_tracking SET schema_version = 1")
    with store.acting(app, QUALITY_MANAGER):
        app.nonconformities.assess_nc(refs[2], impact=5, likelihood=5, capa_required=True)
    reopened = store.app()
    d = collect(reopened.read_models, _today(), "2026-01-01", "2026-06-30")
    assert d.by_risk == [("low", 1), ("high", 1), ("critical", 1)]
    assert dict(store.rows("SELECT id, risk_level FROM nc_summary")) == {
        refs[0]: "high", refs[1]: "low", refs[2]: "critical", refs[3]: None, refs[4]: None,
        refs[5]: None}
    assert store.rows("SELECT schema_version FROM rm_tracking") == [(2,)]
    assert check_caches(reopened, {})["caches_checked"]["read_table_records"] >= 6


def test_a_narrower_period_counts_only_its_own_records(store: Store,
                                                       app: CapaApplication) -> None:
    _first_half_of_2026(store, app)
    d = collect(app.read_models, _today(), "2026-04-01", "2026-04-30")
    assert d.trend == [("2026-04", 1, 0)]
    assert d.pareto_source == [("process", 1)] and d.by_severity == [("critical", 1)]
    wide = collect(app.read_models, _today(), "2025-12-01", "2026-07-31")
    assert [t[0] for t in wide.trend] == [f"{y}-{m:02d}" for y, m in
                                          [(2025, 12), *((2026, k) for k in range(1, 8))]]
    assert sum(t[1] for t in wide.trend) == 5 and wide.totals["ncs"] == 5


def test_owner_breakdown_leaves_out_cancelled_cas(store: Store, app: CapaApplication) -> None:
    refs = _import(store, app, [_row(f"O{i}", "process", "major", _today()) for i in range(3)])
    with store.acting(app, QUALITY_MANAGER):
        for ref in refs:
            app.nonconformities.assess_nc(ref, impact=3, likelihood=3, capa_required=True)
        kept = app.corrective_actions.open_ca(title="Kept", problem="Burrs", owner=OWNER,
                                              ncs=refs[:1]).id
        app.corrective_actions.open_ca(title="Also kept", problem="Burrs", owner=QUALITY_ENGINEER,
                                       ncs=refs[1:2])
        dropped = app.corrective_actions.open_ca(title="Dropped", problem="Burrs",
                                                 owner=QUALITY_ENGINEER,
                                                 ncs=refs[2:]).id
        app.corrective_actions.cancel_ca(dropped, reason="Merged into another CA")
    d = collect(app.read_models, _today())
    assert d.by_owner == [(OWNER, 1, 0), (QUALITY_ENGINEER, 1, 0)]
    assert d.cancelled["cas"] == 1 and d.totals["cas"] == 2 and d.totals["open_cas"] == 2
    assert d.by_risk == [("medium", 3)]
    assert kept


def test_period_refusals() -> None:
    from capa.reports.dashboard import default_period

    with pytest.raises(InvalidInput, match="after --to"):
        default_period("2026-12-01", "2026-06-02", "2026-06-01")
    with pytest.raises(InvalidInput, match=r"after --to 2026-12-01 \(today\)"):
        default_period("2026-12-01", "2027-01-01", None)
    with pytest.raises(InvalidInput, match="at most 600"):
        default_period("2026-12-01", "1900-01-01", None)
    assert default_period("2026-12-01", None, None) == ("2026-01-01", "2026-12-01")
    assert default_period("2026-12-01", None, "2026-02-10") == ("2025-03-01", "2026-02-10")
    # The ends of the calendar: no date arithmetic may leave it.
    assert default_period("2026-12-01", None, "0001-03-04") == ("0001-01-01", "0001-03-04")
    assert default_period("2026-12-01", "9999-01-01", "9999-12-31")[1] == "9999-12-31"
    from capa.reports.dashboard import months_between

    assert months_between(dt.date(9999, 11, 5), dt.date(9999, 12, 31)) == ["9999-11", "9999-12"]


# -- the page ------------------------------------------------------------------------------------


class _Loads(HTMLParser):
    """Every attribute of the page that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster", "xlink:href"):
                self.references.append((tag, name, value or ""))


HOSTILE = ("<script src=\"https://evil.example/x.js\"></script>", "=HYPERLINK(\"http://x\")",
           "**bold** [link](https://evil.example)", "\x1b[31mred\x1b[0m",
           "Ж" * 30 + "漢字" * 20, "W" * 300, "<img src=x onerror=alert(1)>")


def _huge() -> Dashboard:
    """Far more of everything than a page shows, with hostile text in every label."""
    labels = [f"{HOSTILE[i % len(HOSTILE)]} {i}" for i in range(2000)]
    return Dashboard(
        today="2026-12-01", start="1977-01-01", end="2026-12-31",
        open_nc_ages={"0-30 days": 10**6, "31-90 days": 3, "91-180 days": 0, "over 180 days": 1},
        open_ca_ages={"0-30 days": 1, "31-90 days": 0, "91-180 days": 0, "over 180 days": 0},
        overdue=[{"ca": f"CA-2026-{i:04d}", "kind": "action-overdue", "action": "A1",
                  "assignee": "lnguyen", "due": "2026-01-01", "title": labels[i]}
                 for i in range(2000)],
        pareto_source=[(label, 2000 - i) for i, label in enumerate(labels)],
        pareto_cause=[(label, 5) for label in labels],
        mean_days_to_close_nc=12.5, mean_days_to_close_ca=None,
        first_time_effective_rate=None, verified_cas=0,
        recurrence=[(label, "method", 2) for label in labels],
        trend=[(f"{1977 + m // 12}-{m % 12 + 1:02d}", m, m // 2) for m in range(600)],
        totals={"ncs": 10**6, "open_ncs": 10**6, "cas": 0, "open_cas": 0},
        by_severity=[("critical", 1), ("major", 2), ("minor", 3)],
        by_risk=[("low", 1), ("not assessed", 4)],
        by_owner=[(label, 1, 2) for label in labels],
        cancelled={"ncs": 7, "cas": 1})


def test_the_page_stays_small_whatever_it_is_given() -> None:
    page = render_html(_huge(), "Northwind").encode("utf-8")
    assert len(page) <= LIMIT
    text = page.decode("utf-8")
    # Bars and rows beyond what a reader can take in are summed or counted, not drawn.
    assert text.count("<tr>") == 2 * OVERDUE_ROWS + 2
    assert f"and {2000 - OVERDUE_ROWS} more" in text
    pareto = text.split("Pareto of NCs by source</figcaption>")[1].split("</figure>")[0]
    assert pareto.count("<rect") == MAX_BARS + 2  # the bars and two legend keys
    assert ">other<" in pareto


def test_hostile_text_is_shown_as_text_and_loads_nothing() -> None:
    page = render_html(_huge(), "<b>Org</b> https://evil.example")
    parser = _Loads()
    parser.feed(page)
    assert parser.references == []
    assert "script" not in parser.tags and "img" not in parser.tags and "link" not in parser.tags
    # Terminal escapes never reach the file as control characters; they are shown visibly.
    assert "\x1b" not in page and "\u241b[31mred" in page
    assert "&lt;script src=&quot;https://evil.example/x.js&quot;&gt;" in page
    assert "&lt;b&gt;Org&lt;/b&gt;" in page
    # A very long word is cut on a chart's axis (it would push the chart apart) and kept whole
    # in the tables.
    assert "W" * 300 in page and ("W" * 17 + "\u2026") in page
    assert "漢字" in page and "Ж" * 30 in page


def test_every_month_empty_or_not_is_drawn() -> None:
    d = _huge()
    d.trend = [("2026-01", 3, 0), ("2026-02", 0, 0), ("2026-03", 2, 1)]
    page = render_html(d)
    trend = page.split("NCs raised and closed by month</figcaption>")[1].split("</figure>")[0]
    for month in ("2026-01", "2026-02", "2026-03"):
        assert f">{month}</text>" in trend
    assert "2026-02: 0 raised" in trend


def test_print_stylesheet() -> None:
    page = render_html(_huge())
    style = page.split("<style>")[1].split("</style>")[0]
    printing = style.split("@media print")[1]
    assert "@page{size:A4 landscape" in style
    assert re.search(r"\.chart-box\{[^}]*break-inside:avoid", printing)
    assert "page-break-inside:avoid" in printing
    # Nothing on the page is a toolbar or needs a script: the charts are plain SVG.
    assert "modebar" not in page and "<script" not in page and "<button" not in page


# -- the command ---------------------------------------------------------------------------------


def test_dashboard_command_period_and_refusals(store: Store, app: CapaApplication,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _first_half_of_2026(store, app)
    env = cli_env(store, REPORTER)
    page = tmp_path / "d.html"
    code, out, err = run(["--json", "dashboard", "--out", str(page), "--from", "2026-01-01",
                          "--to", "2026-06-30"], env, monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["bytes"] == page.stat().st_size
    text = page.read_text(encoding="utf-8")
    assert "Period 2026-01-01 to 2026-06-30: 3 NCs detected" in text
    events = store.event_count()
    for args, words in (
            (["--from", "2026-06-30", "--to", "2026-01-01"], "is after --to"),
            (["--from", "2100-01-01"], "is after --to"),
            (["--from", "2026-13-01"], "--from must be a date"),
            (["--to", "yesterday"], "--to must be a date"),
            (["--from", "1000-01-01", "--to", "2026-01-01"], "at most 600")):
        out_file = tmp_path / "refused.html"
        code, out, err = run(["dashboard", "--out", str(out_file), *args], env, monkeypatch,
                             capsys)
        assert code == 2, (args, err)
        assert words in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert not out_file.exists()
    assert store.event_count() == events


def test_a_large_store_gives_a_small_page(store: Store, app: CapaApplication) -> None:
    if store.backend != "sqlite":
        pytest.skip("the size bound does not depend on the back end; SQLite keeps it quick")
    today = dt.date.fromisoformat(_today())
    rows = [_row(f"L{i:05d}", ("process", "supplier", "product")[i % 3],
                 ("minor", "major", "critical")[i % 3],
                 (today - dt.timedelta(days=i % 700)).isoformat(), product=f"P-{i % 3000}",
                 title=f"Finding {i}")
            for i in range(20_000)]
    _import(store, app, rows)
    d = collect(app.read_models, today.isoformat(), (today - dt.timedelta(days=700)).isoformat())
    assert d.totals["ncs"] == 20_000 and len(d.trend) >= 23
    page = render_html(d).encode("utf-8")
    assert len(page) <= 100_000  # a page of 20k NCs is as small as one of ten


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOTEXT = shutil.which("pdftotext")


@pytest.mark.skipif(CHROMIUM is None or PDFTOTEXT is None,
                    reason="Chromium or pdftotext is not installed (CI installs both with "
                           "apt-get; without them the print check is skipped)")
def test_printed_page_keeps_each_chart_on_one_page(tmp_path: Path) -> None:
    d = _huge()
    d.pareto_source = d.pareto_source[:6]
    page, pdf = tmp_path / "d.html", tmp_path / "d.pdf"
    page.write_text(render_html(d), encoding="utf-8")
    printed = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert printed.returncode == 0 and pdf.exists(), printed.stderr[-2000:]
    text = subprocess.run([str(PDFTOTEXT), "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = text.split("\f")
    # Each chart's caption and its legend (the chart's last line) are printed on one page.
    for caption, legend in (("Pareto of NCs by source", "cumulative %"),
                            ("Open NCs and CAs by age", "open CAs"),
                            ("CAs by owner", "closed")):
        on = [i for i, p in enumerate(pages) if caption in p]
        assert len(on) == 1, caption
        assert legend in pages[on[0]], caption


@settings(max_examples=300, deadline=None)
@given(first=st.one_of(st.none(), st.dates()), last=st.one_of(st.none(), st.dates()),
       today=st.dates())
def test_any_period_is_drawn_or_refused_cleanly(first: dt.date | None, last: dt.date | None,
                                                today: dt.date) -> None:
    from capa.reports.dashboard import default_period, months_between

    try:
        start, end = default_period(today.isoformat(), first and first.isoformat(),
                                    last and last.isoformat())
    except InvalidInput as refused:
        assert "--from" in str(refused) or "months" in str(refused)
        return
    months = months_between(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    assert 1 <= len(months) <= 600 and start <= end
    assert months[0] == start[:7] and months[-1] == end[:7]
