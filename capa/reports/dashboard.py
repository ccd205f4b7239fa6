"""The KPI dashboard: figures from the read models, drawn with plotly into one HTML file whose
chart library is inline, so it opens offline and needs no server."""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from capa.readmodels.projection import ReadModels

AGE_BUCKETS = ((30, "0-30 days"), (90, "31-90 days"), (180, "91-180 days"),
               (None, "over 180 days"))


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


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _ages(days: list[int]) -> dict[str, int]:
    out = {label: 0 for _, label in AGE_BUCKETS}
    for age in days:
        for limit, label in AGE_BUCKETS:
            if limit is None or age <= limit:
                out[label] += 1
                break
    return out


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def collect(rm: ReadModels, today: str) -> Dashboard:
    """Compute the dashboard's figures from the read tables (caught up first)."""
    rm.catch_up()
    now = _day(today)
    q = rm.sql.query
    ncs = q("SELECT status, source, product, detected_on, closed_at, cause_category "
            "FROM nc_summary")
    cas = q("SELECT status, opened_at, closed_at, first_time_effective FROM ca_summary")
    finished = ("closed", "cancelled")
    open_ncs = [n for n in ncs if n["status"] not in finished]
    open_cas = [c for c in cas if c["status"] not in finished]
    closed_ncs = [n for n in ncs if n["status"] == "closed" and n["closed_at"]]
    closed_cas = [c for c in cas if c["status"] == "closed" and c["closed_at"]]
    verified = [c["first_time_effective"] for c in cas if c["first_time_effective"] is not None]
    raised = Counter(n["detected_on"][:7] for n in ncs)
    closed = Counter(n["closed_at"][:7] for n in closed_ncs)
    months = sorted(set(raised) | set(closed))
    recurrence = Counter((n["product"], n["cause_category"]) for n in ncs
                         if n["product"] and n["cause_category"])
    return Dashboard(
        today=today,
        open_nc_ages=_ages([(now - _day(n["detected_on"])).days for n in open_ncs]),
        open_ca_ages=_ages([(now - _day(c["opened_at"])).days for c in open_cas]),
        overdue=rm.overdue(today),
        pareto_source=Counter(n["source"] for n in ncs).most_common(),
        pareto_cause=Counter(n["cause_category"] for n in ncs
                             if n["cause_category"]).most_common(),
        mean_days_to_close_nc=_mean([(_day(n["closed_at"]) - _day(n["detected_on"])).days
                                     for n in closed_ncs]),
        mean_days_to_close_ca=_mean([(_day(c["closed_at"]) - _day(c["opened_at"])).days
                                     for c in closed_cas]),
        first_time_effective_rate=(round(100 * sum(verified) / len(verified), 1)
                                   if verified else None),
        verified_cas=len(verified),
        recurrence=sorted(((p, c, k) for (p, c), k in recurrence.items() if k > 1),
                          key=lambda r: (-r[2], r[0], r[1])),
        trend=[(m, raised.get(m, 0), closed.get(m, 0)) for m in months],
        totals={"ncs": len(ncs), "open_ncs": len(open_ncs), "cas": len(cas),
                "open_cas": len(open_cas)},
    )


def _go() -> Any:
    # Imported when a dashboard is drawn: plotly is large and no other command needs it.
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    return go


def _pareto(title: str, counts: list[tuple[str, int]]) -> Any:
    go = _go()

    labels = [c[0] for c in counts]
    values = [c[1] for c in counts]
    total = sum(values) or 1
    running, cumulative = 0, []
    for v in values:
        running += v
        cumulative.append(round(100 * running / total, 1))
    fig = go.Figure()
    fig.add_bar(x=labels, y=values, name="NCs")
    fig.add_scatter(x=labels, y=cumulative, name="cumulative %", yaxis="y2", mode="lines+markers")
    fig.update_layout(title=title, yaxis={"title": "NCs"}, xaxis={"type": "category"},
                      yaxis2={"title": "cumulative %", "overlaying": "y", "side": "right",
                              "range": [0, 105], "tickvals": [0, 25, 50, 75, 100]},
                      legend={"orientation": "h", "y": -0.3})
    return fig


def _figures(d: Dashboard) -> list[Any]:
    go = _go()

    ages = go.Figure()
    ages.add_bar(x=list(d.open_nc_ages), y=list(d.open_nc_ages.values()), name="open NCs")
    ages.add_bar(x=list(d.open_ca_ages), y=list(d.open_ca_ages.values()), name="open CAs")
    # Labels such as "0-30 days" would otherwise be auto-typed as dates or numbers.
    ages.update_layout(title="Open NCs and CAs by age", barmode="group",
                       xaxis={"type": "category"})
    trend = go.Figure()
    trend.add_scatter(x=[t[0] for t in d.trend], y=[t[1] for t in d.trend], name="raised",
                      mode="lines+markers")
    trend.add_scatter(x=[t[0] for t in d.trend], y=[t[2] for t in d.trend], name="closed",
                      mode="lines+markers")
    trend.update_layout(title="NCs raised and closed by month", xaxis={"type": "category"})
    return [ages, _pareto("Pareto of NCs by source", d.pareto_source),
            _pareto("Pareto of NCs by cause category (6M)", d.pareto_cause), trend]


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
.kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{border:1px solid #ddd;border-radius:6px;
padding:.6rem 1rem;min-width:11rem}.kpi b{display:block;font-size:1.6rem}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(32rem,1fr));gap:1rem}
.charts>div{min-width:0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
"""


def _fmt(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value}{suffix}"


def render_html(d: Dashboard, organisation: str = "") -> str:
    """The dashboard as one HTML document; plotly.js is embedded once, in the first chart."""
    e = html.escape
    charts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"responsive": True},
                          default_height="420px", default_width="100%",
                          div_id=f"chart-{i}")
              for i, fig in enumerate(_figures(d))]
    kpis = [("Open NCs", str(d.totals["open_ncs"])), ("Open CAs", str(d.totals["open_cas"])),
            ("Overdue items", str(len(d.overdue))),
            ("Mean days to close an NC", _fmt(d.mean_days_to_close_nc)),
            ("Mean days to close a CA", _fmt(d.mean_days_to_close_ca)),
            ("First-time effective", _fmt(d.first_time_effective_rate, " %")
             + f" of {d.verified_cas} verified")]
    overdue = "".join(
        f"<tr><td>{e(o['ca'])}</td><td>{e(o['kind'])}</td><td>{e(o['action'] or '-')}</td>"
        f"<td>{e(o['assignee'] or '-')}</td><td>{e(o['due'] or '-')}</td>"
        f"<td>{e(o['title'])}</td></tr>" for o in d.overdue)
    recurrence = "".join(f"<tr><td>{e(p)}</td><td>{e(c)}</td><td>{k}</td></tr>"
                         for p, c, k in d.recurrence)
    return "\n".join([
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>CAPA dashboard {e(organisation)}</title><style>{_CSS}</style></head><body>",
        f"<h1>CAPA dashboard {e(organisation)}</h1>",
        f"<p>As of {e(d.today)}: {d.totals['ncs']} NCs, {d.totals['cas']} CAs.</p>",
        "<div class=\"kpis\">" + "".join(f"<div class=\"kpi\">{e(k)}<b>{e(v)}</b></div>"
                                         for k, v in kpis) + "</div>",
        "<div class=\"charts\">" + "".join(f"<div>{c}</div>" for c in charts) + "</div>",
        "<h2>Overdue</h2>",
        ("<table><tr><th>CA</th><th>kind</th><th>action</th><th>assignee</th><th>due</th>"
         f"<th>title</th></tr>{overdue}</table>" if overdue else "<p>Nothing overdue.</p>"),
        "<h2>Recurrence (NCs sharing product and cause category)</h2>",
        ("<table><tr><th>product</th><th>cause category</th><th>NCs</th></tr>"
         f"{recurrence}</table>" if recurrence else "<p>No recurrence.</p>"),
        "</body></html>"])
