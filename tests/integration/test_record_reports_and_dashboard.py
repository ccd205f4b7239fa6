"""8D record reports (Markdown, HTML, PDF) and the KPI dashboard, from a real SQLite store."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from capa.domain.errors import InvalidInput, NotFound
from capa.reports.dashboard import collect
from tests.support.cast import (
    OWNER,
    PASSWORD,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    TECHNICIAN,
    VERIFIER,
)
from tests.support.cast import PLANT as CAST
from tests.support.pdftext import base_fonts, pdf_text
from tests.support.reading import reading
from tests.support.stores import Store, app, has_accounts, store

__all__ = ["app", "store"]


def _day(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


def _closed_ca(store: Store, app: CapaApplication, *, approver: str = QUALITY_MANAGER,
               verifier: str = VERIFIER) -> dict[str, str]:
    with store.acting(app, REPORTER):
        nc = app.nonconformities.raise_nc(title="Cracked housing", description="Boss B2 cracked",
                                          source="customer-complaint", severity="major",
                                          product="IP-200",
                                          detected_on=_day(-20)).id
        app.nonconformities.contain_nc(nc, action="Lot quarantined", disposition="quarantine")
        again = app.nonconformities.raise_nc(title="Cracked housing again", description="Boss B3",
                                             source="process", severity="minor",
                                             product="IP-200").id
        minor = app.nonconformities.raise_nc(title="Smudged label", description="Print head",
                                             source="process", severity="minor").id
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.assess_nc(nc, impact=4, likelihood=3, capa_required=True)
        app.nonconformities.assess_nc(again, impact=2, likelihood=2, capa_required=True)
        app.nonconformities.assess_nc(minor, impact=1, likelihood=1, capa_required=False,
                                      rationale="Isolated, caught before release")
        app.nonconformities.close_nc(minor)
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Bosses crack in use",
                                            owner=OWNER,
                                            ncs=[nc, again]).id
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["Thin wall", "Worn insert"])
        app.corrective_actions.plan_ca(ca, action="Replace insert", assignee=TECHNICIAN,
                                       due=_day(5),
                                       action_type="corrective")
        app.corrective_actions.plan_ca(ca, action="Add insert wear to PM plan", assignee=TECHNICIAN,
                                       due=_day(9),
                                       action_type="preventive")
    with store.acting(app, approver):
        app.corrective_actions.approve_ca(ca)
    with store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="Insert replaced")
        app.corrective_actions.complete_action(ca, "A2", note="PM plan rev D")
    with store.acting(app, verifier):
        app.corrective_actions.verify_ca(ca, effective=True, note="No cracks in 6 lots")
    with store.acting(app, approver):
        app.corrective_actions.close_ca(ca)
    return {"nc": nc, "again": again, "minor": minor, "ca": ca}


def _signatures(app: CapaApplication, ref: str) -> list[dict[str, object]]:
    with reading(app):
        return [e.signature.model_dump() for e in app.records.history(ref) if e.signature]


def test_ca_report_has_every_8d_section_and_signature(store: Store, app: CapaApplication) -> None:
    refs = _closed_ca(store, app)
    signatures = _signatures(app, refs["ca"])
    assert [s["meaning"] for s in signatures] == ["approval", "verification", "approval"]
    for fmt in ("md", "html"):
        with reading(app):
            text = app.queries.render_report(refs["ca"], fmt).decode("utf-8")
        for code, title in (("D1", "Team"), ("D2", "Problem"), ("D3", "Containment"),
                            ("D4", "Root cause"), ("D5", "corrective actions"),
                            ("D6", "Implementation"), ("D7", "Prevention"),
                            ("D8", "Verification and closure")):
            assert re.search(f"{code} [^<\n]*{title}", text), (fmt, code)
        for sig in signatures:
            assert str(sig["full_name"]) in text and str(sig["signed_at"]) in text
            assert str(sig["content_sha256"]) in text
        assert "meaning: approval" in text.replace("Meaning", "meaning")
        assert "Lot quarantined" in text and "Worn gate insert" in text
        assert "Add insert wear to PM plan" in text
    if has_accounts():
        assert CAST[QUALITY_MANAGER][0] in text


def test_pdf_report(store: Store, app: CapaApplication) -> None:
    refs = _closed_ca(store, app)
    with reading(app):
        content = app.queries.render_report(refs["ca"], "pdf")
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    assert "D8 Verification and closure" in text
    for sig in _signatures(app, refs["ca"]):
        assert str(sig["signed_at"]) in text


# Printed names (21 CFR 11.50) outside Latin-1: Polish, Czech, Vietnamese, Japanese romaji.
UNICODE_SIGNERS = {"lwroblewski": "Łukasz Wróblewski", "advorak": "Antonín Dvořák",
                   "nthu": "Nguyễn Thị Thu", "kota": "Kenji Ōta"}


@pytest.mark.skipif(not has_accounts(), reason="printed names come from user accounts")
def test_pdf_report_prints_signers_names_as_written(store: Store,
                                                   app: CapaApplication) -> None:
    with store.acting(app, QUALITY_MANAGER):
        for user, name in UNICODE_SIGNERS.items():
            app.identity.add_user(user, full_name=name, roles=["quality"],
                                   # type: ignore[attr-defined]
                                  password=PASSWORD)
    refs = _closed_ca(store, app, approver="advorak", verifier="lwroblewski")
    with store.acting(app, REPORTER):
        minor = app.nonconformities.raise_nc(title="Scuffed label", description="Roller",
                                             source="process",
                                             severity="minor").id
    with store.acting(app, "kota"):
        app.nonconformities.assess_nc(minor, impact=1, likelihood=1, capa_required=False,
                                      rationale="Cosmetic, caught at packing")
    with store.acting(app, "nthu"):
        app.nonconformities.close_nc(minor)
    signed = {str(s["full_name"]) for s in _signatures(app, refs["ca"])}
    assert signed == {"Antonín Dvořák", "Łukasz Wróblewski"}

    with reading(app):
        content = app.queries.render_report(refs["ca"], "pdf")
    assert {f.split("+")[-1] for f in base_fonts(content)} == {"DejaVuSansBook",
                                                              "DejaVuSansBold"}
    assert all(re.fullmatch(r"[A-Z]{6}\+DejaVuSans\w+", f) for f in base_fonts(content)), \
        "the fonts are embedded as subsets"
    assert b"Helvetica" not in content
    text = pdf_text(content)
    words = " ".join(text.split())
    for sig in _signatures(app, refs["ca"]):
        assert f"{sig['full_name']} ({sig['user_id']}), signed {sig['signed_at']}" in words
    assert "Łukasz Wróblewski" in words and "Antonín Dvořák" in words
    assert "?" not in text and "\ufffd" not in text
    assert len(content) < 80_000, "only the glyphs used are embedded"

    with reading(app):
        nc_text = " ".join(pdf_text(app.queries.render_report(minor, "pdf")).split())
    (closure,) = _signatures(app, minor)
    assert closure["full_name"] == "Nguyễn Thị Thu"
    assert f"Nguyễn Thị Thu (nthu), signed {closure['signed_at']}" in nc_text
    assert "kota Kenji Ōta" in nc_text, "the D1 team table prints every name as written"


def test_nc_report_without_ca_shows_its_closure_signature(store: Store,
                                                         app: CapaApplication) -> None:
    refs = _closed_ca(store, app)
    with reading(app):
        text = app.queries.render_report(refs["minor"], "md").decode()
    (sig,) = _signatures(app, refs["minor"])
    assert f"Closure of {refs['minor']}" in text and str(sig["signed_at"]) in text
    assert "no - Isolated, caught before release" in text
    assert "No root-cause analysis recorded." in text


def test_report_refusals(store: Store, app: CapaApplication) -> None:
    refs = _closed_ca(store, app)
    with store.acting(app, REPORTER):
        with pytest.raises(NotFound):
            app.queries.render_report("CA-2026-9999", "md")
        with pytest.raises(InvalidInput):
            app.queries.render_report(refs["ca"], "docx")
        with pytest.raises(InvalidInput):
            app.queries.render_report("nonsense", "md")


def test_dashboard_figures(store: Store, app: CapaApplication) -> None:
    refs = _closed_ca(store, app)
    with store.acting(app, OWNER):
        pass
    d = collect(app.read_models, _day(0))
    assert d.totals == {"ncs": 3, "open_ncs": 0, "cas": 1, "open_cas": 0}
    assert d.pareto_source == [("process", 2), ("customer-complaint", 1)]
    assert d.pareto_cause == [("machine", 2)]
    assert d.first_time_effective_rate == 100.0 and d.verified_cas == 1
    assert d.mean_days_to_close_nc is not None and d.mean_days_to_close_nc > 0
    assert d.mean_days_to_close_ca == 0
    assert d.recurrence == [("IP-200", "machine", 2)]
    month = _day(0)[:7]
    assert d.trend[-1][0] == month and sum(t[1] for t in d.trend) == 3
    assert refs["ca"]


def _dashboard(store: Store, app: CapaApplication, tmp_path: Path) -> Path:
    _closed_ca(store, app)
    with store.acting(app, REPORTER):
        html = app.queries.render_dashboard()
    out = tmp_path / "dashboard.html"
    out.write_text(html, encoding="utf-8")
    return out


def test_dashboard_is_self_contained(store: Store, app: CapaApplication,
                                     tmp_path: Path) -> None:
    html = _dashboard(store, app, tmp_path).read_text(encoding="utf-8")
    # Seven charts drawn as inline SVG; no script at all, so nothing to load or run.
    assert html.count("<svg") == 7
    assert "<script" not in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]+href=", html)
    assert "Pareto of NCs by cause category" in html and "Recurrence" in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs it with "
                                             "apt-get; without it the browser check is skipped)")
def test_dashboard_renders_offline_in_headless_chromium(store: Store, app: CapaApplication,
                                                        tmp_path: Path) -> None:
    page = _dashboard(store, app, tmp_path)
    profile = tmp_path / "profile"
    shot = tmp_path / "dashboard.png"
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2000", "--virtual-time-budget=5000"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('<svg class="chart"') == 7, dom.stderr[-2000:]
    console_errors = [line for line in dom.stderr.splitlines()
                      if "CONSOLE" in line and ("Error" in line or "ERROR" in line)]
    assert console_errors == []
    run = subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0 and shot.stat().st_size > 10_000
