"""The KPI dashboard's figures, from the read models (drawn by capa.reports.dashboard_html).

Figures are aggregated in SQL (GROUP BY), so writing the dashboard of 100k NCs costs little more
than that of 1k (SPEC §13 P7). Cancelled records are left out of every KPI, Pareto and breakdown.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from capa.domain.errors import InvalidInput
from capa.readmodels.projection import ReadModels
from capa.reports.control_chart import ControlLimits, c_chart

AGE_BUCKETS = ((30, "0-30 days"), (90, "31-90 days"), (180, "91-180 days"),
               (None, "over 180 days"))
RISK_LEVELS = ("low", "medium", "high", "critical", "not assessed")
SEVERITY_ORDER = ("critical", "major", "minor")
#: Months a dashboard can show (fifty years), so one chart cannot grow without bound.
MAX_MONTHS = 600


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
    #: Planned effectiveness checks due in the next 30 days (SPEC §12); past due ones are in
    #: `overdue` (kind check-overdue).
    checks_due: list[dict[str, Any]] = field(default_factory=list)
    #: The c-chart limits of the NCs detected per month (capa.reports.control_chart).
    nc_limits: ControlLimits | None = None
    #: The latest signed audit-trail review (capa.app.reviews.last_trail_review), None if never.
    trail_review: dict[str, Any] | None = None


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
    trend = [(m, raised.get(m, 0), monthly_closed.get(m, 0))
             for m in months_between(_day(first), _day(last))]
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
        trend=trend, nc_limits=c_chart([t[1] for t in trend]),
        totals={"ncs": count[("nc", False)], "open_ncs": sum(n for _, n in open_nc),
                "cas": count[("ca", False)], "open_cas": sum(n for _, n in open_ca)},
        by_severity=[(s, severity.pop(s)) for s in SEVERITY_ORDER if s in severity]
        + sorted(severity.items()),
        by_risk=[(level, by["risk"][level]) for level in RISK_LEVELS if by["risk"][level]],
        by_owner=sorted(((o, v[0], v[1]) for o, v in owners.items()),
                        key=lambda r: (-(r[1] + r[2]), r[0])),
        cancelled={"ncs": count[("nc", True)], "cas": count[("ca", True)]},
        checks_due=rm.checks_due(today),
    )
