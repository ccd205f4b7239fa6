"""Exports (SPEC §5): every stored event in log order, and the current records as flat rows.
An export is evidence, so it is folded from the event log itself in one ordered pass
(capa.readmodels.replay), never read from a read table that anyone who can write the store
could edit (SPEC §9.1)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from capa.app.core import Core
from capa.readmodels.projection import COLUMNS
from capa.readmodels.replay import folded, latest_cause, log_reader


def export_events(core: Core) -> Iterator[dict[str, Any]]:
    """Every stored event in log order, decoded: position, record, version, type, time,
    actor and the event's own attributes."""
    refs: dict[Any, str] = {}
    position = 0
    while True:
        batch = core.recorder.select_notifications(start=position + 1, limit=2000)
        if not batch:
            return
        for n in batch:
            event: Any = core.mapper.to_domain_event(n)
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

def export_records(core: Core) -> list[dict[str, Any]]:
    """Current NCs then CAs, one flat row each, folded from the event log: an export is
    evidence, so it never comes from a read table (SPEC §9.1)."""
    ncs: list[dict[str, Any]] = []
    cas: list[dict[str, Any]] = []
    causes: dict[str, list[tuple[int, str | None]]] = {}
    with log_reader(core) as reader:
        for item in folded(core, reader):
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
