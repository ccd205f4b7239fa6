"""The KPI dashboard: figures from the read models, drawn as inline SVG into one HTML file that
needs no script, no server and no network, so it opens offline and stays small whatever the
size of the store.

Figures are aggregated in SQL (GROUP BY), so writing the dashboard of 100k NCs costs little more
than that of 1k (SPEC §13 P7). Cancelled records are left out of every KPI, Pareto and breakdown.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from capa.domain.errors import InvalidInput
from capa.readmodels.projection import ReadModels

AGE_BUCKETS = ((30, "0-30 days"), (90, "31-90 days"), (180, "91-180 days"),
               (None, "over 180 days"))
RISK_LEVELS = ("low", "medium", "high", "critical", "not assessed")
SEVERITY_ORDER = ("critical", "major", "minor")
#: Rows of the overdue table shown in the page; the rest are counted, so the file stays small.
OVERDUE_ROWS = 100
#: Months a dashboard can show (fifty years), so one chart cannot grow without bound.
MAX_MONTHS = 600
#: Bars of a Pareto or owner chart; the rest are summed into one "other" bar.
MAX_BARS = 15


@dataclass
class Dashboard:
    """Every figure the dashboard shows, as plain data (tests read it without a browser)."""

    today: str
    open_nc_ages: dict[str, int]
    open_ca_ages: dict[str, int]
    overdue: list[dict[str, Any]]
    pareto_source: list[tuple[str, int]]
    pareto_cause: list[tuple[str, int]]
    mean_days_to_close_nc: float | None
    mean_days_to_close_ca: float | None
    first_time_effective_rate: float | None
    verified_cas: int
    recurrence: list[tuple[str, str, int]]
    trend: list[tuple[str, int, int]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    start: str = ""
    end: str = ""
    by_severity: list[tuple[str, int]] = field(default_factory=list)
    by_risk: list[tuple[str, int]] = field(default_factory=list)
    #: (owner, open CAs, closed CAs) of CAs opened in the period.
    by_owner: list[tuple[str, int, int]] = field(default_factory=list)
    cancelled: dict[str, int] = field(default_factory=dict)


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    """The first day of the month `back` months before `day`'s, kept within the calendar that
    dates can hold (years 1 to 9999)."""
    months = day.year * 12 + day.month - 1 - back
    months = min(max(months, 12), 9999 * 12 + 11)
    return dt.date(months // 12, months % 12 + 1, 1)


def months_between(start: dt.date, end: dt.date) -> list[str]:
    """Every month from start's to end's, as YYYY-MM, empty ones included."""
    out, month = [], _month_start(start)
    while month <= end:
        out.append(month.isoformat()[:7])
        if month.year == 9999 and month.month == 12:
            break
        month = _month_start(month, -1)
    return out


def default_period(today: str, start: str | None, end: str | None) -> tuple[str, str]:
    """The period shown: `end` defaults to today, `start` to the first day of the twelfth
    month back from `end`, so the default is the last twelve months. A period that ends before
    it starts, or spans more than MAX_MONTHS months, is refused (InvalidInput, exit 2)."""
    last = _day(end) if end else _day(today)
    first = _day(start) if start else _month_start(last, 11)
    if first > last:
        raise InvalidInput(f"--from {first} is after --to {last}"
                           + ("" if end else " (today)") + "; give a --from on or before --to")
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > MAX_MONTHS:
        raise InvalidInput(f"the period spans {months} months; the dashboard shows at most "
                           f"{MAX_MONTHS}: give a later --from or an earlier --to")
    return first.isoformat(), last.isoformat()


def _ages(counts: list[tuple[int, int]]) -> dict[str, int]:
    out = {label: 0 for _, label in AGE_BUCKETS}
    for age, n in counts:
        for limit, label in AGE_BUCKETS:
            if limit is None or age <= limit:
                out[label] += n
                break
    return out


def _mean(pairs: list[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in pairs)
    return round(sum(days * n for days, n in pairs) / total, 1) if total else None


def collect(rm: ReadModels, today: str, start: str | None = None,
            end: str | None = None) -> Dashboard:
    """Compute the dashboard's figures from the read tables (caught up first) for the period
    from `start` to `end` (ISO dates, both included). Ages, open counts and overdue items are
    as of `today`, whatever the period."""
    rm.catch_up()
    now = _day(today)
    first, last = default_period(today, start, end)
    q = rm.sql.query
    # One pass over the NC table, grouped by everything the page breaks NCs down by; the rest
    # is summed here. Business dates: detected_on for NCs, opened_at/closed_at for CAs (legacy
    # dates of migrated records land in the same columns); only their date part is compared.
    # The risk level is a column of its own, so no record's document is read. Days are grouped
    # as stored and cut to their date part here, which spares SQLite a call on every row.
    nc_cube = q("SELECT detected_on AS d, status AS s, source, severity, "
                "cause_category AS cause, "
                "CASE WHEN cause_category IS NOT NULL THEN product END AS product, "
                "risk_level AS risk, count(*) AS n "
                "FROM nc_summary GROUP BY 1, 2, 3, 4, 5, 6, 7")
    closed_nc = q("SELECT substr(detected_on, 1, 10) AS d, substr(closed_at, 1, 10) AS c, "
                  "count(*) AS n FROM nc_summary WHERE status = 'closed' "
                  "AND closed_at IS NOT NULL GROUP BY 1, 2")
    ca_cube = q("SELECT substr(opened_at, 1, 10) AS d, substr(closed_at, 1, 10) AS c, "
                "status AS s, owner, first_time_effective AS f, count(*) AS n "
                "FROM ca_summary GROUP BY 1, 2, 3, 4, 5")

    def within(day: str | None) -> bool:
        return day is not None and first <= day <= last

    open_nc: list[tuple[int, int]] = []
    raised: Counter[str] = Counter()
    by: dict[str, Counter[str]] = {k: Counter() for k in ("source", "cause", "severity", "risk")}
    products: Counter[tuple[str, str]] = Counter()
    count: Counter[tuple[str, bool]] = Counter()
    for r in nc_cube:
        n, day = int(r["n"]), str(r["d"])[:10]
        if r["s"] not in ("closed", "cancelled"):
            open_nc.append(((now - _day(day)).days, n))
        if not within(day):
            continue
        count[("nc", r["s"] == "cancelled")] += n
        if r["s"] == "cancelled":
            continue
        raised[day[:7]] += n
        by["source"][str(r["source"])] += n
        by["severity"][str(r["severity"])] += n
        by["risk"][str(r["risk"] or "not assessed")] += n
        if r["cause"] is not None:
            by["cause"][str(r["cause"])] += n
            if r["product"] is not None:
                products[(str(r["product"]), str(r["cause"]))] += n
    open_ca: list[tuple[int, int]] = []
    closed_ca: list[tuple[int, int]] = []
    owners: dict[str, list[int]] = {}
    ftr: Counter[bool] = Counter()
    for r in ca_cube:
        n = int(r["n"])
        if r["s"] not in ("closed", "cancelled"):
            open_ca.append(((now - _day(r["d"])).days, n))
        if r["s"] == "closed" and within(r["c"]):
            closed_ca.append(((_day(r["c"]) - _day(r["d"])).days, n))
        if not within(r["d"]):
            continue
        count[("ca", r["s"] == "cancelled")] += n
        if r["s"] == "cancelled":
            continue
        owners.setdefault(str(r["owner"]), [0, 0])[1 if r["s"] == "closed" else 0] += n
        if r["f"] is not None:
            ftr[bool(r["f"])] += n
    monthly_closed: Counter[str] = Counter()
    closes_nc: list[tuple[int, int]] = []
    for r in closed_nc:
        if within(r["c"]):
            monthly_closed[str(r["c"])[:7]] += int(r["n"])
            closes_nc.append(((_day(r["c"]) - _day(r["d"])).days, int(r["n"])))

    def ranked(counter: Counter[str]) -> list[tuple[str, int]]:
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))

    severity = dict(by["severity"])
    verified_n = sum(ftr.values())
    return Dashboard(
        today=today, start=first, end=last,
        open_nc_ages=_ages(open_nc), open_ca_ages=_ages(open_ca),
        overdue=rm.overdue(today),
        pareto_source=ranked(by["source"]), pareto_cause=ranked(by["cause"]),
        mean_days_to_close_nc=_mean(closes_nc), mean_days_to_close_ca=_mean(closed_ca),
        first_time_effective_rate=(round(100 * ftr[True] / verified_n, 1)
                                   if verified_n else None),
        verified_cas=verified_n,
        recurrence=sorted(((p, c, k) for (p, c), k in products.items() if k > 1),
                          key=lambda r: (-r[2], r[0], r[1])),
        trend=[(m, raised.get(m, 0), monthly_closed.get(m, 0))
               for m in months_between(_day(first), _day(last))],
        totals={"ncs": count[("nc", False)], "open_ncs": sum(n for _, n in open_nc),
                "cas": count[("ca", False)], "open_cas": sum(n for _, n in open_ca)},
        by_severity=[(s, severity.pop(s)) for s in SEVERITY_ORDER if s in severity]
        + sorted(severity.items()),
        by_risk=[(level, by["risk"][level]) for level in RISK_LEVELS if by["risk"][level]],
        by_owner=sorted(((o, v[0], v[1]) for o, v in owners.items()),
                        key=lambda r: (-(r[1] + r[2]), r[0])),
        cancelled={"ncs": count[("nc", True)], "cas": count[("ca", True)]},
    )


# -- drawing -------------------------------------------------------------------------------------

COLOURS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5")
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 640, 300, 48, 44, 16, 84


#: Control characters (terminal escapes among them) are shown as their visible pictures, so
#: text pasted from a terminal or a legacy system can neither hide text nor reach a terminal
#: that prints the file.
_CONTROLS = {code: 0x2400 + code for code in range(0x20) if code not in (0x09, 0x0A)} \
    | {0x7F: 0x2421} | {code: 0xFFFD for code in range(0x80, 0xA0)}


def _e(text: object) -> str:
    return html.escape(str(text).translate(_CONTROLS), quote=True)


def _short(label: str, limit: int = 18) -> str:
    # Axis labels are cut so one very long word cannot push the chart apart; the whole label
    # stays in the bar's tooltip and in the tables.
    return label if len(label) <= limit else label[:limit - 1] + "\u2026"


def _nice_max(value: int) -> int:
    """The axis top: four whole, round steps (1, 2 or 5 times a power of ten) that reach
    `value`, so every tick label is a whole number."""
    need = max(-(-value // 4), 1)
    scale = 1
    while True:
        for m in (1, 2, 5):
            if m * scale >= need:
                return 4 * m * scale
        scale *= 10


def _top(counts: list[tuple[str, int]]) -> list[tuple[str, int]]:
    if len(counts) <= MAX_BARS:
        return counts
    head = counts[:MAX_BARS - 1]
    return [*head, ("other", sum(n for _, n in counts[MAX_BARS - 1:]))]


def svg_bars(title: str, labels: list[str], series: list[tuple[str, list[int]]], *,
             cumulative: bool = False, line: bool = False) -> str:
    """A bar chart (grouped when several series) or line chart as inline SVG; with
    `cumulative`, a Pareto's cumulative-percent line on a right-hand 0-100 % axis."""
    top = _nice_max(max((v for _, values in series for v in values), default=0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / max(len(labels), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-label="{_e(title)}">'
             f"<title>{_e(title)}</title>"]
    for i in range(5):  # horizontal grid and left axis ticks
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" class="tick" '
                     f'text-anchor="end">{round(top * i / 4)}</text>')
    width = slot * 0.8 / max(len(series), 1)
    for s, (name, values) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        points = []
        for i, v in enumerate(values):
            h = plot_h * v / top
            x = _LEFT + slot * i + slot * 0.1 + width * s
            tip = f"<title>{_e(labels[i])}: {v} {_e(name)}</title>"
            if line:
                cx = _LEFT + slot * (i + 0.5)
                points.append(f"{cx:.1f},{_TOP + plot_h - h:.1f}")
                parts.append(f'<circle cx="{cx:.1f}" cy="{_TOP + plot_h - h:.1f}" r="3" '
                             f'fill="{colour}">{tip}</circle>')
            else:
                parts.append(f'<rect x="{x:.1f}" y="{_TOP + plot_h - h:.1f}" '
                             f'width="{width:.1f}" height="{h:.1f}" fill="{colour}">{tip}</rect>')
        if line and points:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" '
                         f'stroke="{colour}" stroke-width="2"/>')
    if cumulative and series:
        values = series[0][1]
        total, running, points = sum(values) or 1, 0, []
        for i, v in enumerate(values):
            running += v
            points.append(f"{_LEFT + slot * (i + 0.5):.1f},"
                          f"{_TOP + plot_h - plot_h * running / total:.1f}")
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#c53030" '
                     f'stroke-width="2"/>')
        for i in range(5):
            y = _TOP + plot_h - plot_h * i / 4
            parts.append(f'<text x="{_W - _RIGHT + 6}" y="{y + 4:.1f}" class="tick">'
                         f"{25 * i}%</text>")
    for i, label in enumerate(labels):
        x = _LEFT + slot * (i + 0.5)
        parts.append(f'<text class="label" transform="translate({x:.1f},{_TOP + plot_h + 12}) '
                     f'rotate(-35)" text-anchor="end">{_e(_short(label))}</text>')
    legend = [(name, COLOURS[s % len(COLOURS)]) for s, (name, _) in enumerate(series)]
    if cumulative:
        legend.append(("cumulative %", "#c53030"))
    x = float(_LEFT)
    for name, colour in legend:
        parts.append(f'<rect x="{x:.1f}" y="{_H - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14:.1f}" y="{_H - 5}" class="tick">{_e(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _figure(title: str, svg: str) -> str:
    return f'<figure class="chart-box"><figcaption>{_e(title)}</figcaption>{svg}</figure>'


def _pareto(title: str, counts: list[tuple[str, int]]) -> str:
    shown = _top(counts)
    return _figure(title, svg_bars(title, [c[0] for c in shown], [("NCs", [c[1] for c in shown])],
                                   cumulative=True))


def _charts(d: Dashboard) -> list[str]:
    ages = list(d.open_nc_ages)
    owners = d.by_owner[:MAX_BARS]
    months = [t[0] for t in d.trend]
    return [
        _figure("Open NCs and CAs by age", svg_bars(
            "Open NCs and CAs by age", ages,
            [("open NCs", list(d.open_nc_ages.values())),
             ("open CAs", list(d.open_ca_ages.values()))])),
        _figure("NCs raised and closed by month", svg_bars(
            "NCs raised and closed by month", months,
            [("raised", [t[1] for t in d.trend]), ("closed", [t[2] for t in d.trend])],
            line=True)),
        _pareto("Pareto of NCs by source", d.pareto_source),
        _pareto("Pareto of NCs by cause category (6M)", d.pareto_cause),
        _figure("NCs by severity", svg_bars(
            "NCs by severity", [s for s, _ in d.by_severity],
            [("NCs", [n for _, n in d.by_severity])])),
        _figure("NCs by risk level", svg_bars(
            "NCs by risk level", [s for s, _ in d.by_risk], [("NCs", [n for _, n in d.by_risk])])),
        _figure("CAs by owner", svg_bars(
            "CAs by owner", [o for o, _, _ in owners],
            [("open", [o[1] for o in owners]), ("closed", [o[2] for o in owners])])),
    ]


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
.kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{border:1px solid #ddd;border-radius:6px;
padding:.6rem 1rem;min-width:11rem}.kpi b{display:block;font-size:1.6rem}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(30rem,1fr));gap:1rem}
.chart-box{margin:0;border:1px solid #eee;padding:.5rem;min-width:0}
figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#e2e2e2}svg .tick,svg .label{font-size:11px;fill:#444}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;
overflow-wrap:anywhere;max-width:40rem}
.note{color:#555;font-size:.9rem}
@page{size:A4 landscape;margin:12mm}
@media print{body{margin:0;font-size:10pt}.no-print{display:none}
.charts{display:block;font-size:0}.chart-box{break-inside:avoid;page-break-inside:avoid;
box-sizing:border-box;width:49%;display:inline-block;vertical-align:top;margin:0 1% 4mm 0;
font-size:10pt}
.kpis,table,tr,h2{break-inside:avoid;page-break-inside:avoid}h2{break-after:avoid}}
"""


def _fmt(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value}{suffix}"


def render_html(d: Dashboard, organisation: str = "") -> str:
    """The dashboard as one HTML document with every chart drawn inline as SVG."""
    e = _e
    kpis = [("Open NCs", str(d.totals["open_ncs"])), ("Open CAs", str(d.totals["open_cas"])),
            ("Overdue items", str(len(d.overdue))),
            ("Mean days to close an NC", _fmt(d.mean_days_to_close_nc)),
            ("Mean days to close a CA", _fmt(d.mean_days_to_close_ca)),
            ("First-time effective", _fmt(d.first_time_effective_rate, " %")
             + f" of {d.verified_cas} verified")]
    shown = d.overdue[:OVERDUE_ROWS]
    overdue = "".join(
        f"<tr><td>{e(o['ca'])}</td><td>{e(o['kind'])}</td><td>{e(o['action'] or '-')}</td>"
        f"<td>{e(o['assignee'] or '-')}</td><td>{e(o['due'] or '-')}</td>"
        f"<td>{e(o['title'])}</td></tr>" for o in shown)
    more = (f'<p class="note">and {len(d.overdue) - len(shown)} more; '
            f"<code>capa overdue</code> lists them all.</p>" if len(d.overdue) > len(shown)
            else "")
    recurrence = "".join(f"<tr><td>{e(p)}</td><td>{e(c)}</td><td>{k}</td></tr>"
                         for p, c, k in d.recurrence[:OVERDUE_ROWS])
    cancelled = d.cancelled.get("ncs", 0), d.cancelled.get("cas", 0)
    return "\n".join([
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        f"<title>CAPA dashboard {e(organisation)}</title><style>{_CSS}</style></head><body>",
        f"<h1>CAPA dashboard {e(organisation)}</h1>",
        f"<p>Period {e(d.start)} to {e(d.end)}: {d.totals['ncs']} NCs detected, "
        f"{d.totals['cas']} CAs opened. Open counts, ages and overdue items are as of "
        f"{e(d.today)}.</p>",
        f"<p class=\"note\">Cancelled records are left out of every KPI, Pareto and breakdown "
        f"({cancelled[0]} NCs and {cancelled[1]} CAs cancelled in the period).</p>",
        "<div class=\"kpis\">" + "".join(f"<div class=\"kpi\">{e(k)}<b>{e(v)}</b></div>"
                                         for k, v in kpis) + "</div>",
        "<div class=\"charts\">" + "".join(_charts(d)) + "</div>",
        "<h2>Overdue</h2>",
        ("<table><tr><th>CA</th><th>kind</th><th>action</th><th>assignee</th><th>due</th>"
         f"<th>title</th></tr>{overdue}</table>{more}" if overdue
         else "<p>Nothing overdue.</p>"),
        "<h2>Recurrence (NCs sharing product and cause category)</h2>",
        ("<table><tr><th>product</th><th>cause category</th><th>NCs</th></tr>"
         f"{recurrence}</table>" if recurrence else "<p>No recurrence.</p>"),
        "</body></html>"])
