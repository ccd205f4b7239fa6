"""Queries over many records: lists, overdue items and the dashboard from the read models;
exports and reports, which are evidence, from the event log.

`ReadSide` is mixed into the application service. Lists, overdue and the dashboard read
projections that follow the event log (capa.readmodels), never a replay of every aggregate; the
CSV export folds the log itself in one ordered pass (capa.readmodels.replay), because a read
table is a cache that anyone who can write the store could edit (SPEC §9.1).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from capa.app.intake import Intake
from capa.domain.errors import InvalidInput

if TYPE_CHECKING:
    from capa.app.service import CapaApplication
    from capa.app.views import OverdueItem
    from capa.readmodels.projection import ReadModels


def authorise(app: Any, command: str) -> str:
    """The acting user, checked against the role table where the store keeps accounts."""
    check = getattr(app, "_authorise", None)
    return str(check(command)) if check is not None else str(app._actor())


class ReadSide(Intake):
    """Read-model queries of CapaApplication, and bulk intake (which reads them for idempotence)."""

    _read_models: ReadModels | None = None

    @property
    def read_models(self) -> ReadModels:
        if self._read_models is None:
            # Imported on first use: a command that writes one record never reads the models.
            from capa.readmodels.projection import ReadModels

            self._read_models = ReadModels(self)
        return self._read_models

    def rebuild_read_models(self) -> dict[str, int]:
        """Drop the read tables and project the whole event log again, and delete the snapshot
        rows earlier releases left: both are caches, and the log is the record (admin or
        quality)."""
        authorise(self, "readmodels rebuild")
        snapshots = self.read_models.remove_snapshots()
        position = self.read_models.rebuild()
        counts = {name: self.read_models.count(name)
                  for name in ("nc_summary", "ca_summary", "action_items")}
        return {"position": position, "nonconformities": counts["nc_summary"],
                "corrective_actions": counts["ca_summary"], "action_items": counts["action_items"],
                "snapshots_removed": snapshots}

    # -- export ------------------------------------------------------------------------------

    def export_events(self) -> Iterator[dict[str, Any]]:
        """Every stored event in log order, decoded: position, record, version, type, time,
        actor and the event's own attributes."""
        app = cast("CapaApplication", self)
        refs: dict[Any, str] = {}
        position = 0
        while True:
            batch = app.recorder.select_notifications(start=position + 1, limit=2000)
            if not batch:
                return
            for n in batch:
                event: Any = app.mapper.to_domain_event(n)
                state = {k: v for k, v in vars(event).items()
                         if k not in ("originator_id", "originator_version", "timestamp")
                         and not _secret(k, v)}
                if "ref" in state:
                    refs[n.originator_id] = str(state["ref"])
                yield {"position": n.id, "record": refs.get(n.originator_id,
                                                            str(n.originator_id)),
                       "version": n.originator_version, "type": type(event).__qualname__,
                       "time": _iso(event.timestamp), "actor": getattr(event, "actor", None),
                       "state": json.loads(json.dumps(state, default=_json_default))}
            position = batch[-1].id

    def export_records(self) -> list[dict[str, Any]]:
        """Current NCs then CAs, one flat row each, folded from the event log: an export is
        evidence, so it never comes from a read table (SPEC §9.1)."""
        from capa.readmodels.projection import COLUMNS
        from capa.readmodels.replay import folded, latest_cause, log_reader

        ncs: list[dict[str, Any]] = []
        cas: list[dict[str, Any]] = []
        causes: dict[str, list[tuple[int, str | None]]] = {}
        with log_reader(self) as reader:
            for item in folded(self, reader):
                if item.kind == "nc":
                    ncs.append(dict(zip(COLUMNS["nc_summary"][:-1], item.rows["nc_summary"][0],
                                        strict=False)))
                    continue
                ca = dict(zip(COLUMNS["ca_summary"][:-1], item.rows["ca_summary"][0],
                              strict=False))
                cas.append(ca)
                for nc, _ in item.rows["nc_ca_links"]:
                    causes.setdefault(nc, []).append((ca["sort_key"], ca["cause_category"]))
        rows: list[dict[str, Any]] = []
        for nc in sorted(ncs, key=lambda r: int(r["sort_key"])):
            rows.append({"id": nc["id"], "kind": "nonconformity", "status": nc["status"],
                         "title": nc["title"], "severity": nc["severity"],
                         "source": nc["source"], "product": nc["product"], "lot": nc["lot"],
                         "external_ref": nc["external_ref"], "detected_on": nc["detected_on"],
                         "opened_at": nc["raised_at"], "closed_at": nc["closed_at"],
                         "cause_category": latest_cause(causes.get(nc["id"], [])),
                         "linked": " ".join(json.loads(nc["linked_cas"])), "owner": None,
                         "iteration": None, "version": nc["version"]})
        for ca in sorted(cas, key=lambda r: int(r["sort_key"])):
            rows.append({"id": ca["id"], "kind": "corrective-action", "status": ca["status"],
                         "title": ca["title"], "severity": None, "source": None,
                         "product": None, "lot": None, "external_ref": None,
                         "detected_on": None, "opened_at": ca["opened_at"],
                         "closed_at": ca["closed_at"], "cause_category": ca["cause_category"],
                         "linked": " ".join(json.loads(ca["linked_ncs"])), "owner": ca["owner"],
                         "iteration": ca["iteration"], "version": ca["version"]})
        return rows

    # -- reports -----------------------------------------------------------------------------

    def render_report(self, ref: str, fmt: str) -> bytes:
        """The 8D report of one NC or CA as Markdown, HTML or PDF bytes."""
        from capa.reports.eightd import build_report
        from capa.reports.render import render

        if fmt not in ("md", "html", "pdf"):
            raise InvalidInput(f"format must be one of: md, html, pdf (got {fmt!r})")
        return render(build_report(cast("CapaApplication", self), ref), fmt)

    def render_dashboard(self, today: str | None = None, start: str | None = None,
                         end: str | None = None) -> str:
        """The KPI dashboard as one self-contained HTML document, for the period from `start`
        to `end` (ISO dates, both included; the last twelve months by default)."""
        from capa.reports.dashboard import collect
        from capa.reports.dashboard_html import render_html

        return render_html(collect(self.read_models, today or _today(), start, end),
                           organisation=_organisation(self))


def list_records(app: CapaApplication, kind: str, *, statuses: Sequence[str],
                 severities: Sequence[str], sources: Sequence[str], overdue: bool) -> list[Any]:
    from capa.app.views import CorrectiveActionView, NonconformityView

    query = app.read_models.ncs if kind == "nc" else app.read_models.cas
    view = NonconformityView if kind == "nc" else CorrectiveActionView
    docs = query(statuses=statuses, severities=severities, sources=sources,
                 overdue_on=_today() if overdue else None)
    return [view.model_validate(doc) for doc in docs]


def overdue_items(app: CapaApplication) -> list[OverdueItem]:
    from capa.app.views import OverdueItem

    today = dt.datetime.now(dt.UTC).date()
    out: list[OverdueItem] = []
    for row in app.read_models.overdue(today.isoformat()):
        late = (today - dt.date.fromisoformat(row["due"])).days if row["due"] else None
        out.append(OverdueItem(kind=row["kind"], ca=row["ca"], action=row["action"],
                               title=row["title"], owner=row["owner"], assignee=row["assignee"],
                               due=row["due"], days_overdue=late, status=row["status"]))
    return out


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _organisation(app: Any) -> str:
    try:
        return str(app.store_info().get("organisation") or "")
    except Exception:  # noqa: BLE001 - a report still renders for a store without its record
        return ""


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _secret(key: str, value: Any) -> bool:
    """A password hash that an account event of an earlier release held (read as its
    `credential`, or as `password_hash` by older readers): never exported (SPEC §9.3)."""
    return key == "password_hash" or (
        key == "credential" and not str(value).startswith("sha256:"))
