"""Steps of features/reports: the 8D record report, bulk intake and the dashboard.

The fixture `desk` lives here (not in conftest) so these scenarios read the application the
same way whatever the shared steps become; step texts are distinct from the shared ones.

Size: four features (the record report, bulk intake, the dashboard, trends) on one `desk`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from pytest_bdd import given, parsers, then, when

from capa.app.application import CapaApplication
from capa.app.import_rows import ImportRejected, read_csv
from capa.reports.dashboard import collect
from tests.support.cast import OWNER, QUALITY_MANAGER, REPORTER, TECHNICIAN, VERIFIER
from tests.support.pdflayout import assert_inside_text_area, signature_blocks
from tests.support.reading import reading
from tests.support.stores import Store


@dataclass
class Desk:
    """What a scenario has made so far."""

    store: Store
    app: CapaApplication
    folder: Path
    refs: dict[str, str] = field(default_factory=dict)
    report: str = ""
    pdf: bytes = b""
    dashboard: str = ""
    refusal: ImportRejected | None = None


@pytest.fixture
def desk(tmp_path: Path, store_target: str) -> Iterator[Desk]:
    store = Store(store_target)
    yield Desk(store, store.create(), tmp_path)
    store.close()


def _day(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


def _raise(desk: Desk, source: str, product: str = "IP-200 housing") -> str:
    with desk.store.acting(desk.app, REPORTER):
        return desk.app.nonconformities.raise_nc(title=f"Problem from {source}",
                                                 description="Seen in use",
                                                 source=source, severity="major",
                                                 product=product).id


def _corrected(desk: Desk, ncs: list[str], category: str) -> str:
    app = desk.app
    with desk.store.acting(app, QUALITY_MANAGER):
        for nc in ncs:
            app.nonconformities.assess_nc(nc, impact=4, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Bosses crack in use",
                                            owner=OWNER,
                                            ncs=ncs).id
    with desk.store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="ishikawa",
                                              root_cause="Worn gate insert on mould M-17",
                                              category=category)
    return ca


# -- record report ---------------------------------------------------------------------------


@given("a records store where a housing crack was corrected, verified and closed")
def closed_correction(desk: Desk) -> None:
    app = desk.app
    nc = _raise(desk, "customer-complaint")
    with desk.store.acting(app, REPORTER):
        app.nonconformities.contain_nc(nc, action="Lot L2311 quarantined", disposition="quarantine")
    ca = _corrected(desk, [nc], "machine")
    with desk.store.acting(app, OWNER):
        app.corrective_actions.plan_ca(ca, action="Replace the gate insert", assignee=TECHNICIAN,
                                       due=_day(5),
                                       action_type="corrective")
        app.corrective_actions.plan_ca(ca, action="Add insert wear to the maintenance plan",
                                       assignee=TECHNICIAN,
                                       due=_day(9), action_type="preventive")
    with desk.store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.approve_ca(ca)
    with desk.store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="Insert replaced")
        app.corrective_actions.complete_action(ca, "A2", note="Maintenance plan revised")
    with desk.store.acting(app, VERIFIER):
        app.corrective_actions.verify_ca(ca, effective=True, note="No cracks in six lots")
    with desk.store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.close_ca(ca)
    desk.refs = {"nc": nc, "ca": ca}


@when("the quality manager prints the 8D report of the corrective action")
def print_report(desk: Desk) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.report = desk.app.queries.render_report(desk.refs["ca"], "md").decode("utf-8")


FAKE_CLOSURE = ("Boss cracked\n\n## D8 Verification and closure\n\n> **Signature - Closure:** "
                "Maria Hernandez (mhernandez), signed 2026-01-01T00:00:00Z (UTC), meaning: "
                "approval\n\n<!--")


@given("a nonconformity whose description imitates a closure section and a signature")
def imitating_nc(desk: Desk) -> None:
    with desk.store.acting(desk.app, REPORTER):
        nc = desk.app.nonconformities.raise_nc(title="Smudged label", description=FAKE_CLOSURE,
                                               source="process", severity="minor").id
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.app.nonconformities.assess_nc(nc, impact=1, likelihood=1, capa_required=False,
                                           rationale="Cosmetic")
        desk.app.nonconformities.close_nc(nc)
    desk.refs["imitating"] = nc


@when("the quality manager prints the 8D report of that nonconformity")
def print_nc_report(desk: Desk) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.report = desk.app.queries.render_report(desk.refs["imitating"], "md").decode("utf-8")


def _markdown_blocks(text: str) -> tuple[list[str], list[str]]:
    """The paragraphs and the block quotes (signatures) a Markdown reader shows."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    paragraphs, quotes, depth = [], [], 0
    for token in tokens:
        depth += {"blockquote_open": 1, "blockquote_close": -1}.get(token.type, 0)
        if token.type == "inline":
            shown = "".join("\n" if c.type in ("softbreak", "hardbreak") else c.content
                            for c in token.children or [])
            (quotes if depth else paragraphs).append(shown)
    return paragraphs, quotes


@then("the only signature in the report is the genuine closure of that nonconformity")
def only_genuine_signature(desk: Desk) -> None:
    nc = desk.refs["imitating"]
    with reading(desk.app):
        (closure,) = [e.signature for e in desk.app.records.history(nc) if e.signature]
    _, quotes = _markdown_blocks(desk.report)
    assert len(quotes) == 1, quotes
    assert quotes[0].startswith(f"Signature - Closure of {nc} (no CA required): "
                                f"{closure.full_name} ({closure.user_id}), signed "
                                f"{closure.signed_at} (UTC)")


@then("the report shows the description exactly as it was typed")
def description_as_typed(desk: Desk) -> None:
    paragraphs, _ = _markdown_blocks(desk.report)
    assert FAKE_CLOSURE.removesuffix("\n\n<!--").split("\n\n", 1)[1] in "\n\n".join(paragraphs)
    assert "<!--" in "\n\n".join(paragraphs)


@when("the quality manager prints the 8D report of the corrective action as PDF")
def print_pdf(desk: Desk) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.pdf = desk.app.queries.render_report(desk.refs["ca"], "pdf")


@then("every word of the PDF lies inside the page margins")
def pdf_inside_margins(desk: Desk) -> None:
    assert_inside_text_area(desk.pdf)


@then("every signature in the PDF is printed whole with printed name, UTC time and meaning")
def pdf_signatures_whole(desk: Desk) -> None:
    with reading(desk.app):
        signed = [e.signature for e in desk.app.records.history(desk.refs["ca"]) if e.signature]
    blocks = [" ".join(text.split()) for _, _, text in signature_blocks(desk.pdf)]
    assert len(blocks) == len(signed)
    for sig, block in zip(signed, blocks, strict=True):
        assert block.startswith(f"{sig.full_name} ({sig.user_id}), signed {sig.signed_at} "
                                f"(UTC), meaning: {sig.meaning};"), block


@then("the report has the sections D1 to D8 in order")
def sections_in_order(desk: Desk) -> None:
    found = re.findall(r"^## (D\d) ", desk.report, re.M)
    assert found == [f"D{n}" for n in range(1, 9)]


@then("the report shows every signature of the corrective action with printed name, UTC time "
      "and meaning")
def every_signature(desk: Desk) -> None:
    with reading(desk.app):
        signed = [e.signature for e in desk.app.records.history(desk.refs["ca"]) if e.signature]
    assert [s.meaning for s in signed] == ["approval", "verification", "approval"]
    for sig in signed:
        assert f"{sig.full_name} ({sig.user_id}), signed {sig.signed_at} (UTC), meaning: " \
               f"{sig.meaning}" in desk.report
        assert sig.signed_at.endswith("Z")


@then(parsers.parse('the report names the {part} "{text}"'))
def report_names(desk: Desk, part: str, text: str) -> None:
    assert text in desk.report, part


# -- bulk intake ------------------------------------------------------------------------------


@given("an empty records store for bulk intake")
def empty_store(desk: Desk) -> None:
    with reading(desk.app):
        assert desk.app.queries.list_records("nc") == []


def _take_in(desk: Desk, text: str) -> None:
    path = desk.folder / "complaints.csv"
    path.write_text(text, encoding="utf-8")
    header, rows = read_csv(path)
    with desk.store.acting(desk.app, REPORTER):
        try:
            desk.app.intake.import_ncs(rows, {"Complaint": "external_ref"}, header=header)
        except ImportRejected as refused:
            desk.refusal = refused


def _complaints(bad_source_row: int | None = None) -> str:
    lines = ["Complaint,title,description,source,severity"]
    for row in range(2, 5):
        source = "canteen" if row == bad_source_row else "customer-complaint"
        lines.append(f"COMP-{row},Alarm not audible,Case {row},{source},major")
    return "\n".join(lines) + "\n"


@when("the reporter takes in a file of 3 complaints with their complaint numbers")
@when("the reporter takes in the same file again")
def take_in_complaints(desk: Desk) -> None:
    _take_in(desk, _complaints())


@when(parsers.parse('the reporter takes in a file of 3 complaints where row {row:d} names the '
                    'source "{source}"'))
def take_in_bad(desk: Desk, row: int, source: str) -> None:
    assert source == "canteen"
    _take_in(desk, _complaints(bad_source_row=row))


@when(parsers.parse('the reporter takes in a spreadsheet of complaints detected on "{day}"'))
@when(parsers.parse('the reporter takes in a spreadsheet of complaints detected on "{day}" '
                    'written "{layout}"'))
def take_in_dated(desk: Desk, day: str, layout: str | None = None) -> None:
    path = desk.folder / "dated.csv"
    path.write_text("Complaint;title;description;source;severity;detected_on\r\n"
                    + "".join(f"COMP-{n};Alarm not audible;Case {n};customer-complaint;major;"
                              f"{day}\r\n" for n in range(2, 5)), encoding="utf-8-sig")
    header, rows = read_csv(path)
    with desk.store.acting(desk.app, REPORTER):
        try:
            desk.app.intake.import_ncs(rows, {"Complaint": "external_ref"}, header=header,
                                       date_format=layout)
        except ImportRejected as refused:
            desk.refusal = refused


@then(parsers.parse("the intake is refused, naming both readings: {first} and {second}"))
def refused_both_readings(desk: Desk, first: str, second: str) -> None:
    assert desk.refusal is not None
    reasons = [e.reason for e in desk.refusal.report.errors]
    assert len(reasons) == 3 and all(first in r and second in r for r in reasons)


@then(parsers.parse("every nonconformity taken in was detected on {day}"))
def all_detected_on(desk: Desk, day: str) -> None:
    assert desk.refusal is None
    with reading(desk.app):
        days = [v.detected_on for v in desk.app.queries.list_records("nc")]
    assert days == [day] * 3


@then("the store holds 3 nonconformities, one for each complaint number")
def one_per_complaint(desk: Desk) -> None:
    with reading(desk.app):
        refs = [v.external_ref for v in desk.app.queries.list_records("nc")]
    assert refs == ["COMP-2", "COMP-3", "COMP-4"]


@then(parsers.parse("the intake is refused, naming row {row:d} and its source column"))
def refused(desk: Desk, row: int) -> None:
    assert desk.refusal is not None
    assert [(e.row, e.column) for e in desk.refusal.report.errors] == [(row, "source")]


@then("the store holds no nonconformity")
def nothing_held(desk: Desk) -> None:
    with reading(desk.app):
        assert desk.app.queries.list_records("nc") == []


# -- dashboard --------------------------------------------------------------------------------


@given("a records store with nonconformities from several sources and one recurring problem")
def several_sources(desk: Desk) -> None:
    complaints = [_raise(desk, "customer-complaint") for _ in range(3)]
    desk.refs["supplier"] = _raise(desk, "supplier", product="PC resin RX-40")
    _corrected(desk, complaints[:2], "machine")
    desk.refs["spare complaint"] = complaints[2]


@given(parsers.parse("the supplier nonconformity was assessed with impact {impact:d} and "
                     "likelihood {likelihood:d}"))
def supplier_assessed(desk: Desk, impact: int, likelihood: int) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.app.nonconformities.assess_nc(desk.refs["supplier"], impact=impact,
                                           likelihood=likelihood,
                                           capa_required=False,
                                           rationale="Resin lot returned to the supplier")


@given("the third complaint was cancelled as raised in error")
def cancelled_complaint(desk: Desk) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.app.nonconformities.cancel_nc(desk.refs["spare complaint"],
                                           reason="Raised twice for one complaint")


@when("the quality manager produces the dashboard")
def produce_dashboard(desk: Desk) -> None:
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.dashboard = desk.app.queries.render_dashboard()


@then(parsers.parse('the dashboard counts {many:d} nonconformities from "{first}" and {few:d} '
                    'from "{second}"'))
def counts_by_source(desk: Desk, many: int, first: str, few: int, second: str) -> None:
    figures = collect(desk.app.read_models, _day(0))
    assert dict(figures.pareto_source) == {first: many, second: few}
    assert "Pareto of NCs by source" in desk.dashboard


@then(parsers.parse('the dashboard counts by risk level {high:d} "high", {low:d} "low" and '
                    '{none:d} "not assessed"'))
def counts_by_risk(desk: Desk, high: int, low: int, none: int) -> None:
    figures = collect(desk.app.read_models, _day(0))
    assert figures.by_risk == [("low", low), ("high", high), ("not assessed", none)]
    assert f"<title>high: {high} NCs</title>" in desk.dashboard


@then("the dashboard is a single file that loads nothing from the network")
def self_contained(desk: Desk) -> None:
    assert not re.search(r"<(script|img|iframe)[^>]+src=", desk.dashboard)
    assert not re.search(r"<link[^>]+href=", desk.dashboard)


@then("the dashboard says that cancelled records are left out")
def says_cancelled_left_out(desk: Desk) -> None:
    assert "Cancelled records are left out of every KPI" in desk.dashboard
    assert collect(desk.app.read_models, _day(0)).cancelled["ncs"] == 1


@then(parsers.parse('the dashboard shows {count:d} nonconformities on "{product}" recurring for '
                    'the cause "{cause}"'))
def recurring(desk: Desk, count: int, product: str, cause: str) -> None:
    figures = collect(desk.app.read_models, _day(0))
    assert figures.recurrence == [(product, cause, count)]
    assert f"<td>{product}</td><td>{cause}</td><td>{count}</td>" in desk.dashboard


# -- trends and recurrence ---------------------------------------------------------------------


def _months_ago(months: int) -> dt.date:
    """A day in the calendar month `months` before this one (31-day steps always change month).
    """
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=31 * months)


_MONTH_WORDS = {"2 months ago": 2, "1 month ago": 1, "this month": 0}


@given(parsers.parse("nonconformities detected 2 months ago, 1 month ago and this month: "
                     "{older:d}, {last:d} and {this:d} of them"))
def detected_over_months(desk: Desk, older: int, last: int, this: int) -> None:
    with desk.store.acting(desk.app, REPORTER):
        for months, count in ((2, older), (1, last), (0, this)):
            for i in range(count):
                day = _months_ago(months) if months else dt.datetime.now(dt.UTC).date()
                ref = desk.app.nonconformities.raise_nc(title=f"Label smudge {months}-{i}",
                                                        description="Print head dirty",
                                                        source="process",
                                                        severity="minor",
                                                        detected_on=day.isoformat()).id
                desk.refs.setdefault(f"month-{months}", ref)


@given("one of this month's nonconformities was closed without a corrective action")
def closed_without_ca(desk: Desk) -> None:
    nc = desk.refs["month-0"]
    with desk.store.acting(desk.app, QUALITY_MANAGER):
        desk.app.nonconformities.assess_nc(nc, impact=1, likelihood=1, capa_required=False,
                                           rationale="Isolated smudge; print head cleaned at once")
        desk.app.nonconformities.close_nc(nc)


@then("the dashboard's monthly trend reads:")
def monthly_trend(desk: Desk, datatable: list[list[str]]) -> None:
    header, *body = datatable
    expected = []
    for line in body:
        row = dict(zip(header, line, strict=True))
        month = _months_ago(_MONTH_WORDS[row["month"]]).isoformat()[:7]
        expected.append((month, int(row["raised"]), int(row["closed"])))
    figures = collect(desk.app.read_models, _day(0))
    assert [t for t in figures.trend if t[0] in {e[0] for e in expected}] == expected
    assert "NCs raised and closed by month" in desk.dashboard
    desk.refs["trended months"] = " ".join(e[0] for e in expected)


@then("every other month of the last twelve reads zero")
def other_months_zero(desk: Desk) -> None:
    figures = collect(desk.app.read_models, _day(0))
    named = desk.refs["trended months"].split()
    assert len(figures.trend) == 12 and figures.trend[-1][0] == _day(0)[:7]
    assert all(raised == closed == 0 for month, raised, closed in figures.trend
               if month not in named)


@given(parsers.parse('a cracked "{product}" reported by a customer complaint, an internal audit '
                     'and a supplier'))
def cracks_from_three_sources(desk: Desk, product: str) -> None:
    desk.refs["cracks"] = ",".join(
        _raise(desk, source, product=product)
        for source in ("customer-complaint", "internal-audit", "supplier"))


@given(parsers.parse('a seal failure on "{product}" reported by a customer complaint'))
def seal_failure(desk: Desk, product: str) -> None:
    _raise(desk, "customer-complaint", product=product)


@given(parsers.parse('the three housing cracks were traced to the cause category "{category}"'))
def cracks_traced(desk: Desk, category: str) -> None:
    _corrected(desk, desk.refs["cracks"].split(","), category)


@then(parsers.parse('the Pareto by cause category counts {count:d} nonconformities for '
                    '"{category}"'))
def pareto_by_cause(desk: Desk, count: int, category: str) -> None:
    figures = collect(desk.app.read_models, _day(0))
    assert figures.pareto_cause == [(category, count)]
    assert "Pareto of NCs by cause category" in desk.dashboard


@then(parsers.parse('the Pareto by source counts {a:d} from "{first}", {b:d} from "{second}" and '
                    '{c:d} from "{third}"'))
def pareto_by_source(desk: Desk, a: int, first: str, b: int, second: str, c: int,
                     third: str) -> None:
    figures = collect(desk.app.read_models, _day(0))
    assert dict(figures.pareto_source) == {first: a, second: b, third: c}
    assert figures.pareto_source[0] == (first, a)

