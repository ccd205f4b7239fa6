"""The management review pack (ISO 9001 9.3.2 c, ISO 13485 5.6.2): the CAPA inputs of a period,
folded from the event log alone (capa.readmodels.replay), never from a read table, and laid out
as a report that the 8D renderers (Markdown, HTML, PDF) draw.

What it holds, for the period from `start` to `end` (both included):

- NCs and CAs per month, by business date (an NC's detection date, a CA's opening date, a
  migrated record's legacy dates), cancelled records left out, every month shown, with the
  c-chart's centre line and 3-sigma limits (capa.reports.control_chart) and the months that
  break them;
- recurrence: products with more than one NC in the period, and NCs sharing a product and a
  cause category;
- action items due in the period: done on time, done late, still open past their date; their
  due-date extensions;
- effectiveness checks made in the period: verified effective or not effective;
- the open CAPAs (as of the day the pack is made) by age band and owner, and the oldest of them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from capa.readmodels.projection import COLUMNS
from capa.readmodels.replay import folded, latest_cause, log_reader
from capa.reports.control_chart import ControlLimits, breaches, c_chart
from capa.reports.dashboard import AGE_BUCKETS, months_between
from capa.reports.eightd import Report, Section

__all__ = ["ManagementReview", "collect_review", "review_report"]

#: Open CAPAs listed by name, oldest first; the rest are counted.
OLDEST_SHOWN = 15


@dataclass
class ManagementReview:
    """Every figure of the pack, as plain data (tests read it without a renderer)."""

    start: str
    end: str
    today: str
    months: list[str]
    nc_per_month: list[int]
    ca_per_month: list[int]
    nc_limits: ControlLimits | None
    ca_limits: ControlLimits | None
    nc_breaches: list[tuple[str, int, str]]
    ca_breaches: list[tuple[str, int, str]]
    recurring_products: list[tuple[str, int, list[str]]]
    recurring_causes: list[tuple[str, str, int, list[str]]]
    items: dict[str, int]
    effective: int
    not_effective: int
    #: owner -> count per age band, of CAs open today.
    open_by_owner: dict[str, dict[str, int]]
    #: (CA, title, owner, opened on, age in days) of the oldest open CAs.
    oldest_open: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    open_total: int = 0

    @property
    def effectiveness_rate(self) -> float | None:
        checked = self.effective + self.not_effective
        return round(100 * self.effective / checked, 1) if checked else None


def _date(text: Any) -> str | None:
    return str(text)[:10] if text else None


def collect_review(app: Any, start: dt.date, end: dt.date, today: dt.date) -> ManagementReview:
    """The pack's figures for the period, from one ordered pass over the event log."""
    first, last = start.isoformat(), end.isoformat()

    def within(day: str | None) -> bool:
        return day is not None and first <= day <= last

    months = months_between(start, end)
    ncs: Counter[str] = Counter()
    cas: Counter[str] = Counter()
    nc_rows: list[dict[str, Any]] = []
    links: dict[str, list[tuple[int, str | None]]] = {}
    items: Counter[str] = Counter()
    effective = not_effective = 0
    open_by_owner: dict[str, dict[str, int]] = {}
    oldest: list[tuple[str, str, str, str, int]] = []
    with log_reader(app) as reader:
        for record in folded(app, reader):
            if record.kind == "nc":
                nc = dict(zip(COLUMNS["nc_summary"], record.rows["nc_summary"][0], strict=True))
                if nc["status"] != "cancelled" and within(_date(nc["detected_on"])):
                    ncs[str(nc["detected_on"])[:7]] += 1
                    nc_rows.append(nc)
                continue
            ca = dict(zip(COLUMNS["ca_summary"], record.rows["ca_summary"][0], strict=True))
            for nc_ref, _ in record.rows.get("nc_ca_links", []):
                links.setdefault(nc_ref, []).append((int(ca["sort_key"]), ca["cause_category"]))
            if ca["status"] == "cancelled":
                continue
            opened = _date(ca["opened_at"])
            if within(opened):
                cas[str(opened)[:7]] += 1
            doc = json.loads(ca["doc"])
            for item in doc.get("items", []):
                _count_item(items, item, first, last, today.isoformat())
            for check in doc.get("verifications", []):
                if within(_date((check.get("signature") or {}).get("signed_at"))):
                    if check.get("effective"):
                        effective += 1
                    else:
                        not_effective += 1
            if ca["status"] != "closed" and opened is not None:
                age = (today - dt.date.fromisoformat(opened)).days
                bands = open_by_owner.setdefault(str(ca["owner"]),
                                                 {label: 0 for _, label in AGE_BUCKETS})
                bands[_band(age)] += 1
                oldest.append((str(ca["id"]), str(ca["title"]), str(ca["owner"]), opened, age))
    nc_counts = [ncs.get(m, 0) for m in months]
    ca_counts = [cas.get(m, 0) for m in months]
    nc_limits, ca_limits = c_chart(nc_counts), c_chart(ca_counts)
    products: dict[str, list[str]] = {}
    causes: dict[tuple[str, str], list[str]] = {}
    for nc in sorted(nc_rows, key=lambda r: int(r["sort_key"])):
        if nc["product"] is None:
            continue
        products.setdefault(str(nc["product"]), []).append(str(nc["id"]))
        cause = latest_cause(links.get(str(nc["id"]), []))
        if cause is not None:
            causes.setdefault((str(nc["product"]), cause), []).append(str(nc["id"]))
    oldest.sort(key=lambda r: (-r[4], r[0]))
    return ManagementReview(
        start=first, end=last, today=today.isoformat(), months=months,
        nc_per_month=nc_counts, ca_per_month=ca_counts, nc_limits=nc_limits,
        ca_limits=ca_limits, nc_breaches=breaches(list(zip(months, nc_counts, strict=True)),
                                                  nc_limits),
        ca_breaches=breaches(list(zip(months, ca_counts, strict=True)), ca_limits),
        recurring_products=sorted(((p, len(r), r) for p, r in products.items() if len(r) > 1),
                                  key=lambda t: (-t[1], t[0])),
        recurring_causes=sorted(((p, c, len(r), r) for (p, c), r in causes.items()
                                 if len(r) > 1), key=lambda t: (-t[2], t[0], t[1])),
        items=dict(items), effective=effective, not_effective=not_effective,
        open_by_owner=dict(sorted(open_by_owner.items())), oldest_open=oldest[:OLDEST_SHOWN],
        open_total=len(oldest))


def _band(age: int) -> str:
    return next(label for limit, label in AGE_BUCKETS if limit is None or age <= limit)


def _count_item(items: Counter[str], item: dict[str, Any], first: str, last: str,
                today: str) -> None:
    """An action item's part of the overdue and extension statistics: items due in the period
    (by their due date now), how they ended, and the extensions recorded in the period."""
    extensions = [x for x in item.get("extensions", []) if first <= str(x.get("at"))[:10] <= last]
    items["extensions"] += len(extensions)
    items["extension_days"] += sum(
        (dt.date.fromisoformat(x["to"]) - dt.date.fromisoformat(x["from"])).days
        for x in extensions)
    if extensions:
        items["items_extended"] += 1
    due = str(item.get("due"))
    if not first <= due <= last:
        return
    items["due"] += 1
    done = _date(item.get("completed_at"))
    if item.get("state") == "done" and done is not None:
        items["done_on_time" if done <= due else "done_late"] += 1
    elif due < today:
        items["open_overdue"] += 1
    else:
        items["open_not_yet_due"] += 1


# -- the report -------------------------------------------------------------------------------


#: Records named in a row of the recurrence tables; the rest are counted.
REFS_SHOWN = 8


def _refs(refs: list[str]) -> str:
    shown = ", ".join(refs[:REFS_SHOWN])
    return shown if len(refs) <= REFS_SHOWN else f"{shown} and {len(refs) - REFS_SHOWN} more"


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _control(section: Section, what: str, review: ManagementReview, counts: list[int],
             limits: ControlLimits | None, broken: list[tuple[str, int, str]]) -> None:
    if limits is None:
        section.text(f"No month in the period: no {what} to chart.")
        return
    section.text(f"c-chart of the {what} per month: centre c̄ = {_fmt(limits.centre)}, "
                 f"UCL = c̄ + 3√c̄ = {_fmt(limits.ucl)}, LCL = max(0, c̄ − 3√c̄) = "
                 f"{_fmt(limits.lcl)}. "
                 + (f"{len(broken)} month(s) outside the limits: "
                    + "; ".join(f"{m} ({n}, {side} the limits)" for m, n, side in broken) + "."
                    if broken else "No month is outside the limits."))
    section.blocks.append(("chart", (f"{what.capitalize()} per month", review.months, counts,
                                     limits)))
    section.table(["month", what, "UCL", "LCL", "outside the limits"],
                  [[m, str(n), _fmt(limits.ucl), _fmt(limits.lcl), limits.breach(n) or "-"]
                   for m, n in zip(review.months, counts, strict=True)])


def review_report(review: ManagementReview, organisation: str, generated_at: str,
                  name_of: Callable[[str], str]) -> Report:
    """The pack as a report of sections, for capa.reports.render."""
    def person(user: str) -> str:
        name = name_of(user)
        return user if not name or name == user else f"{name} ({user})"

    scope = Section("M1", "Period and scope")
    scope.text(f"CAPA inputs to the management review (ISO 9001:2015 9.3.2 c; ISO 13485:2016 "
               f"5.6.2) for {review.start} to {review.end}, folded from the event log. NCs "
               "count by their detection date, CAs by the date they were opened; cancelled "
               "records are left out. Open CAPAs and their ages are as of "
               f"{review.today}.")
    scope.table(["figure", "value"], [
        ["NCs detected", str(sum(review.nc_per_month))],
        ["CAs opened", str(sum(review.ca_per_month))],
        ["months", str(len(review.months))],
        ["open CAPAs today", str(review.open_total)]])
    trend_nc = Section("M2", "Nonconformities per month, with control limits")
    _control(trend_nc, "NCs", review, review.nc_per_month, review.nc_limits, review.nc_breaches)
    trend_ca = Section("M3", "Corrective actions opened per month, with control limits")
    _control(trend_ca, "CAs", review, review.ca_per_month, review.ca_limits, review.ca_breaches)
    recurrence = Section("M4", "Recurrence")
    if not (review.recurring_products or review.recurring_causes):
        recurrence.text("No product had more than one NC in the period.")
    recurrence.table(["product", "NCs", "records"],
                     [[p, str(n), _refs(refs)] for p, n, refs in review.recurring_products])
    recurrence.table(["product", "cause category", "NCs", "records"],
                     [[p, c, str(n), _refs(refs)] for p, c, n, refs in review.recurring_causes])
    late = Section("M5", "Overdue actions and due-date extensions")
    i = review.items
    extended = i.get("extensions", 0)
    late.table(["figure", "value"], [
        ["action items due in the period", str(i.get("due", 0))],
        ["done on time", str(i.get("done_on_time", 0))],
        ["done late", str(i.get("done_late", 0))],
        ["still open past their due date", str(i.get("open_overdue", 0))],
        ["still open, not yet due", str(i.get("open_not_yet_due", 0))],
        ["due-date extensions recorded in the period", str(extended)],
        ["action items extended", str(i.get("items_extended", 0))],
        ["mean days added per extension",
         _fmt(i.get("extension_days", 0) / extended) if extended else "-"]])
    checks = Section("M6", "Effectiveness of corrective actions")
    rate = review.effectiveness_rate
    checks.text(f"Effectiveness checks signed in the period: {review.effective} verified "
                f"effective, {review.not_effective} not effective; effectiveness rate "
                + (f"{rate} %." if rate is not None else "n/a (no check in the period)."))
    ages = Section("M7", "Open CAPAs by age and owner")
    bands = [label for _, label in AGE_BUCKETS]
    if not review.open_by_owner:
        ages.text("No CAPA is open.")
    ages.table(["owner", *bands, "total"],
               [[person(owner), *(str(counts[b]) for b in bands), str(sum(counts.values()))]
                for owner, counts in review.open_by_owner.items()])
    ages.table(["CA", "title", "owner", "opened", "age (days)"],
               [[ref, title, person(owner), opened, str(age)]
                for ref, title, owner, opened, age in review.oldest_open])
    if review.open_total > len(review.oldest_open):
        ages.text(f"The {len(review.oldest_open)} oldest of {review.open_total} open CAPAs are "
                  "listed; `capa ca list` lists them all.")
    return Report(record=f"{review.start} to {review.end}", title="CAPA inputs",
                  status="", version=0, organisation=organisation, generated_at=generated_at,
                  sections=[scope, trend_nc, trend_ca, recurrence, late, checks, ages],
                  kind="Management review",
                  summary=(f"{organisation + '. ' if organisation else ''}"
                           f"Generated {generated_at}."))
