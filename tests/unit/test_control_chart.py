"""The c-chart's control limits (capa.reports.control_chart), worked by hand; the dashboard's
monthly NC chart and the management review pack draw the very same limits; the pack's PDF keeps
every word inside the page, long and non-Latin names included."""

from __future__ import annotations

import math

import pytest

from capa.reports import control_chart, dashboard, management_review
from capa.reports.control_chart import ControlLimits, breaches, c_chart
from capa.reports.dashboard import Dashboard
from capa.reports.dashboard_html import render_html
from capa.reports.management_review import ManagementReview, review_report
from capa.reports.markdown import to_markdown
from capa.reports.pdf import to_pdf
from tests.support.pdflayout import assert_inside_text_area, pages

#: Ten months of NC counts: 160 in all.
MONTHS = [f"2026-{m:02d}" for m in range(1, 11)]
COUNTS = [16, 18, 14, 16, 20, 12, 16, 30, 2, 16]


def test_limits_worked_by_hand() -> None:
    # c̄ = 160 / 10 = 16; √16 = 4; UCL = 16 + 3·4 = 28; LCL = max(0, 16 − 12) = 4.
    limits = c_chart(COUNTS)
    assert limits == ControlLimits(centre=16.0, ucl=28.0, lcl=4.0)
    # August (30 > 28) is above the limits, September (2 < 4) below; 28 or 4 would be inside.
    assert breaches(list(zip(MONTHS, COUNTS, strict=True)), limits) == [
        ("2026-08", 30, "above"), ("2026-09", 2, "below")]
    assert limits.breach(28) is None and limits.breach(4) is None


def test_the_lower_limit_never_goes_below_zero() -> None:
    # c̄ = 6 / 4 = 1.5; UCL = 1.5 + 3·√1.5 = 5.174…; LCL = max(0, 1.5 − 3.674…) = 0.
    limits = c_chart([0, 1, 2, 3])
    assert limits is not None
    assert limits.centre == 1.5
    assert limits.ucl == pytest.approx(1.5 + 3 * math.sqrt(1.5))
    assert limits.ucl == pytest.approx(5.1742, abs=1e-4)
    assert limits.lcl == 0.0
    assert breaches([("2026-01", 0), ("2026-02", 6)], limits) == [("2026-02", 6, "above")]


def test_no_months_no_limits_and_all_zero_months_break_nothing() -> None:
    assert c_chart([]) is None
    assert breaches([("2026-01", 3)], None) == []
    flat = c_chart([0, 0, 0])
    assert flat == ControlLimits(0.0, 0.0, 0.0)
    assert breaches([("2026-01", 0)], flat) == []


def test_the_dashboard_and_the_pack_use_the_one_function() -> None:
    assert dashboard.c_chart is control_chart.c_chart
    assert management_review.c_chart is control_chart.c_chart


def _dashboard() -> Dashboard:
    return Dashboard(today="2026-10-31", open_nc_ages={}, open_ca_ages={}, overdue=[],
                     pareto_source=[], pareto_cause=[], mean_days_to_close_nc=None,
                     mean_days_to_close_ca=None, first_time_effective_rate=None,
                     verified_cas=0, recurrence=[],
                     trend=[(m, n, 0) for m, n in zip(MONTHS, COUNTS, strict=True)],
                     start="2026-01-01", end="2026-10-31", nc_limits=c_chart(COUNTS),
                     totals={"ncs": 160, "open_ncs": 0, "cas": 0, "open_cas": 0})


def test_the_dashboards_monthly_chart_draws_the_control_limits() -> None:
    page = render_html(_dashboard())
    for label in ("UCL 28.00", "centre 16.00", "LCL 4.00"):
        assert f"<title>{label}</title>" in page, label
    assert page.count('class="limit"') == 3
    assert "UCL 28.0" in page  # the legend


HOSTILE = "<script>alert(1)</script> | ## fake | [x](http://evil)"
LONG_NAME = "Nguyễn Thị Thu Hương-Papadopoulou Ζωή Αικατερίνη Щербакова-Вишневская"


def _review(months: int = 36) -> ManagementReview:
    labels = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(months)]
    counts = [(7 * m) % 11 for m in range(months)]
    limits = c_chart(counts)
    return ManagementReview(
        start="2024-01-01", end="2026-12-31", today="2027-01-05", months=labels,
        nc_per_month=counts, ca_per_month=[n // 3 for n in counts], nc_limits=limits,
        ca_limits=c_chart([n // 3 for n in counts]),
        nc_breaches=breaches(list(zip(labels, counts, strict=True)), limits), ca_breaches=[],
        recurring_products=[(f"Produkt {HOSTILE} Ω-{'x' * 60}", 3,
                             ["NC-2026-0001", "NC-2026-0002", "NC-2026-0003"])],
        recurring_causes=[("IP-200", "machine", 2, ["NC-2026-0001", "NC-2026-0002"])],
        items={"due": 4, "done_on_time": 2, "open_overdue": 2, "extensions": 1,
               "extension_days": 14, "items_extended": 1},
        effective=3, not_effective=1,
        open_by_owner={"hnguyen": {"0-30 days": 1, "31-90 days": 0, "91-180 days": 2,
                                   "over 180 days": 5}},
        oldest_open=[("CA-2026-0001", f"{HOSTILE} {'Très long titre ' * 12}", "hnguyen",
                      "2025-01-02", 733)], open_total=1)


def test_the_pack_pdf_keeps_long_and_non_latin_names_inside_the_page() -> None:
    report = review_report(_review(), "Северный завод медицинских изделий", "2027-01-05T08:00Z",
                           lambda user: LONG_NAME if user == "hnguyen" else user)
    content = to_pdf(report)
    assert_inside_text_area(content)
    text = "".join("".join(t.split()) for _, t in pages(content))
    assert "".join(LONG_NAME.split()) in text
    assert "Северныйзаводмедицинскихизделий" in text
    assert "<script>alert(1)</script>" in text  # printed as text, nothing runs in a PDF
    assert "UCL=c̄+3√c̄" in text


def test_the_pack_markdown_and_html_escape_hostile_text() -> None:
    report = review_report(_review(3), "Org", "2027-01-05T08:00Z", lambda user: user)
    md = to_markdown(report)
    assert "<script>" not in md and "\\<script\\>" in md
    assert "\n## fake" not in md and "[x](http://evil)" not in md and "\\[x\\]" in md
    row = next(line for line in md.splitlines() if line.startswith("| Produkt"))
    assert row.count("|") - row.count("\\|") == 4  # three cells: no column was injected
    from capa.reports.htmlpage import to_html

    page = to_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 2  # the NC and CA c-charts
