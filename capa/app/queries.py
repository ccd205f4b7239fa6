"""Queries over many records: lists, overdue items and the dashboard from the read models
(capa.readmodels), which follow the event log, never a replay of every aggregate; the 8D report
of one record; and the rebuild of the read tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from capa.app.core import Core, today
from capa.app.operations import operation
from capa.app.records import record_view
from capa.app.views import CorrectiveActionView, NonconformityView, OverdueItem
from capa.domain.errors import InvalidInput
from capa.reports.dashboard import collect
from capa.reports.dashboard_html import render_html
from capa.reports.eightd import Report, build_report


class Queries:
    """Lists, overdue items, reports and the dashboard of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("nc list", "ca list")
    def list_records(
        self, kind: str, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
        sources: Sequence[str] = (), overdue: bool = False,
    ) -> list[Any]:
        """NCs or CAs matching every given filter; a CA matches severity and source through
        its linked NCs, an NC is overdue when one of its CAs has an overdue action item.
        Answered from the read models (capa.readmodels), caught up first."""
        models = self.core.read_models
        query = models.ncs if kind == "nc" else models.cas
        view = NonconformityView if kind == "nc" else CorrectiveActionView
        docs = query(statuses=statuses, severities=severities, sources=sources,
                     overdue_on=today() if overdue else None)
        return [view.model_validate(doc) for doc in docs]

    @operation("nc list")
    def similar_ncs(self, ref: str) -> list[NonconformityView]:
        """The open NCs (neither closed nor cancelled) similar to `ref`: the same product and a
        similar title (capa.domain.similarity). The read table, caught up, names the open NCs
        of the product; each one whose title is similar is then read from its events, and
        kept only if the events agree, so the answer is the records' own."""
        from capa.domain.nonconformity import Nonconformity
        from capa.domain.similarity import similar, similar_title

        core = self.core
        nc = core.load(Nonconformity, core.canonical(ref, "NC"))
        product = (nc.product or "").strip()
        if not product:
            return []
        found: list[NonconformityView] = []
        for row in core.read_models.open_ncs_of_product(product):
            if row["id"] == nc.ref or not similar_title(nc.title, str(row["title"])):
                continue
            view = record_view(core, str(row["id"]))
            assert isinstance(view, NonconformityView)
            if view.status not in ("closed", "cancelled") and similar(
                    nc.product, nc.title, view.product, view.title):
                found.append(view)
        return found

    @operation("overdue")
    def overdue(self) -> list[OverdueItem]:
        """Implemented CAs awaiting verification, open action items and planned effectiveness
        checks past due, from the read models."""
        day = dt.datetime.now(dt.UTC).date()
        out: list[OverdueItem] = []
        for row in self.core.read_models.overdue(day.isoformat()):
            late = (day - dt.date.fromisoformat(row["due"])).days if row["due"] else None
            out.append(OverdueItem(kind=row["kind"], ca=row["ca"], action=row["action"],
                                   title=row["title"], owner=row["owner"],
                                   assignee=row["assignee"], due=row["due"],
                                   days_overdue=late, status=row["status"]))
        return out

    @operation("report")
    def report(self, ref: str) -> Report:
        """The 8D report of one NC or CA, its sections collected (capa.reports.eightd)."""
        return build_report(_ReportSource(self.core), ref)

    @operation("report")
    def render_report(self, ref: str, fmt: str) -> bytes:
        """The 8D report of one NC or CA as Markdown, HTML or PDF bytes."""
        # Start-up time (SPEC §7 P1): the PDF library loads only for a report.
        from capa.reports.render import render

        if fmt not in ("md", "html", "pdf"):
            raise InvalidInput(f"format must be one of: md, html, pdf (got {fmt!r})")
        return render(build_report(_ReportSource(self.core), ref), fmt)

    @operation("dashboard")
    def render_dashboard(self, today: str | None = None, start: str | None = None,
                         end: str | None = None) -> str:
        """The KPI dashboard as one self-contained HTML document, for the period from `start`
        to `end` (ISO dates, both included; the last twelve months by default)."""
        from capa.app.reviews import last_trail_review

        figures = collect(self.core.read_models, today or _today(), start, end)
        # From the events of the review record, never a read table (SPEC §9.1).
        figures.trail_review = last_trail_review(self.core)
        return render_html(figures, organisation=_organisation(self.core))

    @operation("readmodels rebuild")
    def rebuild_read_models(self) -> dict[str, int]:
        """Drop the read tables and project the whole event log again, and delete the snapshot
        rows earlier releases left: both are caches, and the log is the record (admin or
        quality)."""
        models = self.core.read_models
        snapshots = models.remove_snapshots()
        position = models.rebuild()
        counts = {name: models.count(name)
                  for name in ("nc_summary", "ca_summary", "action_items")}
        return {"position": position, "nonconformities": counts["nc_summary"],
                "corrective_actions": counts["ca_summary"], "action_items": counts["action_items"],
                "snapshots_removed": snapshots}


class _ReportSource:
    """What a report reads of the store, for the user the `report` operation admitted."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.full_name = core.full_name
        self.store_info = core.store_info

    def show(self, ref: str) -> NonconformityView | CorrectiveActionView:
        return record_view(self.core, ref)


def _today() -> str:
    return today()


def _organisation(core: Core) -> str:
    try:
        return str(core.store_info().get("organisation") or "")
    except Exception:  # noqa: BLE001 - a report still renders for a store without its record
        return ""
