"""The KPI dashboard drawn as inline SVG into one HTML file that needs no script, no server and
no network, so it opens offline and stays small whatever the size of the store. The figures are
capa.reports.dashboard's.
"""

from __future__ import annotations

import html
import math

from capa.reports.control_chart import ControlLimits
from capa.reports.dashboard import Dashboard

#: Rows of the overdue table shown in the page; the rest are counted, so the file stays small.
OVERDUE_ROWS = 100
#: Bars of a Pareto or owner chart; the rest are summed into one "other" bar.
MAX_BARS = 15

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
             cumulative: bool = False, line: bool = False,
             limits: ControlLimits | None = None) -> str:
    """A bar chart (grouped when several series) or line chart as inline SVG; with
    `cumulative`, a Pareto's cumulative-percent line on a right-hand 0-100 % axis; with
    `limits`, the c-chart's centre line and control limits of the first series."""
    highest = max((v for _, values in series for v in values), default=0)
    if limits is not None:
        highest = max(highest, math.ceil(limits.ucl))
    top = _nice_max(highest)
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
    legend_limits: list[tuple[str, str]] = []
    if limits is not None:
        for name, value, colour in (("UCL", limits.ucl, "#c53030"),
                                    ("centre", limits.centre, "#4a5568"),
                                    ("LCL", limits.lcl, "#c53030")):
            y = _TOP + plot_h - plot_h * value / top
            parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{colour}" stroke-dasharray="5 3" class="limit">'
                         f"<title>{name} {value:.2f}</title></line>")
            legend_limits.append((f"{name} {value:.1f}", colour))
    for i, label in enumerate(labels):
        x = _LEFT + slot * (i + 0.5)
        parts.append(f'<text class="label" transform="translate({x:.1f},{_TOP + plot_h + 12}) '
                     f'rotate(-35)" text-anchor="end">{_e(_short(label))}</text>')
    legend = [(name, COLOURS[s % len(COLOURS)]) for s, (name, _) in enumerate(series)]
    if cumulative:
        legend.append(("cumulative %", "#c53030"))
    legend += legend_limits
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
            line=True, limits=d.nc_limits)),
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


def _trail_review(d: Dashboard) -> str:
    """When the audit trail was last reviewed, and by whom (EU GMP Annex 11 §9)."""
    review = d.trail_review
    if review is None:
        return '<p class="trail-review">Audit trail last reviewed: never.</p>'
    return (f'<p class="trail-review">Audit trail last reviewed: {_e(review["reviewed_on"])} by '
            f'{_e(review["full_name"])} (period {_e(review["from"])} to {_e(review["to"])}, '
            f'{_e(review["exceptions"])} exception(s) listed).</p>')


def render_html(d: Dashboard, organisation: str = "") -> str:
    """The dashboard as one HTML document with every chart drawn inline as SVG."""
    e = _e
    kpis = [("Open NCs", str(d.totals["open_ncs"])), ("Open CAs", str(d.totals["open_cas"])),
            ("Overdue items", str(len(d.overdue))),
            ("Effectiveness checks due in 30 days", str(len(d.checks_due))),
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
        _trail_review(d),
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
