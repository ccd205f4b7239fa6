"""The 8D record report (D1 team ... D8 closure) of an NC or CA: what it says, before any format.

``build_report`` gathers the sections from the application's views of the record; the
renderers (capa.reports.markdown, .htmlpage, .pdf, chosen by capa.reports.render) only lay
them out. Every electronic signature is shown with its manifestation as 21 CFR 11.50 requires:
printed name, date and time (UTC) and meaning, plus the record version and content digest it
binds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

#: One block of a section: ("p", text), ("table", (headers, rows)), ("sig", (label, signature))
#: or ("chart", (title, month labels, counts, control limits)), which only the HTML and PDF
#: renderers draw (the table beside it carries the same figures).
Block = tuple[str, Any]


@dataclass
class Section:
    code: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def text(self, value: str) -> None:
        self.blocks.append(("p", value))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        if rows:
            self.blocks.append(("table", (headers, [[_s(c) for c in r] for r in rows])))

    def signature(self, label: str, sig: dict[str, Any] | None) -> None:
        if sig:
            self.blocks.append(("sig", (label, sig)))


@dataclass
class Report:
    record: str
    title: str
    status: str
    version: int
    organisation: str
    generated_at: str
    sections: list[Section]
    #: What the document is, before its record: an 8D report, or another report laid out by
    #: the same renderers (the management review pack).
    kind: str = "8D report"
    #: The line under the heading; by default the record's status and version.
    summary: str | None = None

    @property
    def heading(self) -> str:
        return f"{self.kind} {self.record}".strip()



def _s(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def manifestation(sig: dict[str, Any]) -> str:
    """The signature as a reader sees it (11.50): printed name, UTC time, meaning."""
    return (f"{sig['full_name']} ({sig['user_id']}), signed {sig['signed_at']} (UTC), "
            f"meaning: {sig['meaning']}; bound to version {sig['signed_version']}, "
            f"content SHA-256 {sig['content_sha256']}; " + (
                f"digital signature ({sig.get('algorithm')}, key {sig.get('key_id')})"
                if sig.get("signature")
                else "password-attested (no digital signature)"))


def build_report(app: Any, ref: str) -> Report:
    """Collect the 8D sections of a record from the application's queries."""
    view = app.show(ref).model_dump(mode="json", by_alias=True)
    if view["kind"] == "corrective-action":
        ca: dict[str, Any] | None = view
        ncs = [app.show(r).model_dump(mode="json", by_alias=True) for r in view["linked_ncs"]]
    else:
        ncs = [view]
        ca = (app.show(view["linked_cas"][-1]).model_dump(mode="json", by_alias=True)
              if view["linked_cas"] else None)
    name = app.full_name
    sections = [_d1(ca, ncs, name), _d2(ca, ncs), _d3(ncs), _d4(ca, ncs), _d5(ca), _d6(ca),
                _d7(ca), _d8(ca, ncs)]
    try:
        organisation = str(app.store_info().get("organisation") or "")
    except Exception:  # noqa: BLE001 - a report still renders without the store record
        organisation = ""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Report(record=view["id"], title=view["title"], status=view["status"],
                  version=view["version"], organisation=organisation, generated_at=now,
                  sections=sections)


def _d1(ca: dict[str, Any] | None, ncs: list[dict[str, Any]], name: Any) -> Section:
    section = Section("D1", "Team")
    people: dict[str, set[str]] = {}

    def add(user: str | None, role: str) -> None:
        if user:
            people.setdefault(user, set()).add(role)

    for nc in ncs:
        add(nc["reported_by"], "reported the nonconformity")
        if nc["assessment"]:
            add(nc["assessment"]["by"], "assessed risk")
    if ca:
        add(ca["owner"], "CA owner")
        for item in ca["items"]:
            add(item["assignee"], f"action {item['number']}")
        for approval in ca["approvals"]:
            add(approval["signature"]["user_id"], "approved the plan")
        for check in ca.get("checks") or []:
            add(check["planned_by"], "planned the effectiveness check")
            for ext in check["extensions"]:
                add(ext["signature"]["user_id"], "verified effectiveness")
        for verification in ca["verifications"]:
            add(verification["signature"]["user_id"], "verified effectiveness")
        for impact in ca.get("impacts") or []:
            add(impact["by"], "assessed the impact")
        if ca["closure"]:
            add(ca["closure"]["signature"]["user_id"], "closed the CA")
    section.table(["user", "name", "part"],
                  [[u, name(u), ", ".join(sorted(r))] for u, r in sorted(people.items())])
    return section


def _d2(ca: dict[str, Any] | None, ncs: list[dict[str, Any]]) -> Section:
    section = Section("D2", "Problem description")
    if ca:
        section.text(f"{ca['id']} {ca['title']}: {ca['problem']}")
    for nc in ncs:
        section.text(f"{nc['id']} {nc['title']} ({nc['severity']}, {nc['source']}, detected "
                     f"{nc['detected_on']}): {nc['description']}")
        details = [["product", nc["product"]], ["lot", nc["lot"]],
                   ["external reference", nc["external_ref"]]]
        if nc["assessment"]:
            a = nc["assessment"]
            details.append(["risk", f"impact {a['impact']} x likelihood {a['likelihood']} = "
                                    f"{a['risk']} ({a['risk_level']})"])
            details.append(["CA required", "yes" if a["capa_required"] else
                            f"no - {a['rationale']}"])
        section.table(["field", "value"], [d for d in details if d[1]])
    return section


def _d3(ncs: list[dict[str, Any]]) -> Section:
    section = Section("D3", "Containment")
    rows = [[nc["id"], c["action"], c["disposition"], c.get("location") or "", c["by"], c["at"]]
            for nc in ncs for c in nc["containment"]]
    section.table(["NC", "action", "disposition", "where", "by", "at (UTC)"], rows)
    if not rows:
        section.text("No containment action recorded.")
    return section


def _d4(ca: dict[str, Any] | None, ncs: list[dict[str, Any]]) -> Section:
    section = Section("D4", "Root cause")
    if not ca or not ca["analyses"]:
        legacy = _legacy(ca, "root_cause")
        section.text(f"Recorded in the legacy system: {legacy}" if legacy
                     else "No root-cause analysis recorded.")
        return section
    for index, a in enumerate(ca["analyses"]):
        current = " (current)" if index == len(ca["analyses"]) - 1 else ""
        section.text(f"Iteration {a['iteration']}, {a['method']}, category {a['category']}"
                     f"{current}: {a['root_cause']} - by {a['by']} at {a['at']}")
        if a["whys"]:
            section.table(["why", "answer"], [[i + 1, w] for i, w in enumerate(a["whys"])])
    return section


def _items(ca: dict[str, Any] | None, kinds: tuple[str, ...]) -> list[list[Any]]:
    if not ca:
        return []
    return [[i["number"], i["type"], i["text"], i["assignee"], i["due"], i["iteration"]]
            for i in ca["items"] if i["type"] in kinds]


def _d5(ca: dict[str, Any] | None) -> Section:
    section = Section("D5", "Chosen corrective actions")
    rows = _items(ca, ("correction", "corrective"))
    section.table(["action", "type", "text", "assignee", "due", "iteration"], rows)
    if not rows:
        legacy = _legacy(ca, "action")
        section.text(f"Recorded in the legacy system: {legacy}" if legacy
                     else "No corrective action planned.")
    for approval in (ca or {}).get("approvals", []):
        label = f"Plan approval, iteration {approval['iteration']}"
        section.signature(label + (" (voided: plan changed later)" if approval["voided"]
                                   else ""), approval["signature"])
    return section


def _d6(ca: dict[str, Any] | None) -> Section:
    section = Section("D6", "Implementation")
    items = (ca or {}).get("items", [])
    section.table(["action", "state", "completed by", "at (UTC)", "note", "evidence"],
                  [[i["number"], i["state"], i["completed_by"], i["completed_at"], i["note"],
                    [f"{e['name']} (sha256 {e['sha256'][:12]})" for e in i["evidence"]]]
                   for i in items])
    extensions = [[i["number"], e["from"], e["to"], e["reason"], e["by"], e["at"]]
                  for i in items for e in i["extensions"]]
    section.table(["action", "due was", "due now", "reason", "by", "at (UTC)"], extensions)
    if not items:
        section.text("Done in the legacy system (see D8)." if ca and ca.get("migration")
                     and ca["status"] == "closed" else "Nothing implemented yet.")
    return section


def _d7(ca: dict[str, Any] | None) -> Section:
    section = Section("D7", "Prevention of recurrence")
    rows = _items(ca, ("preventive",))
    section.table(["action", "type", "text", "assignee", "due", "iteration"], rows)
    if not rows:
        section.text("No preventive action recorded.")
    return section


def _d8(ca: dict[str, Any] | None, ncs: list[dict[str, Any]]) -> Section:
    section = Section("D8", "Verification and closure")
    checks = (ca or {}).get("checks") or []
    # What was to prove effectiveness, said before the verdicts (SPEC §12).
    for c in checks:
        method = f" Method: {c['method']}." if c["method"] else ""
        replanned = f" Re-planned: {c['reason']}." if c.get("reason") else ""
        section.text(f"Planned effectiveness check, iteration {c['iteration']} ({c['state']}; "
                     f"due {c['due']}; planned by {c['planned_by']} at {c['planned_at']}): "
                     f"{c['criteria']}{method}{replanned}")
        for ext in c["extensions"]:
            section.text(f"Iteration {c['iteration']}: inconclusive. {ext['note'].rstrip('.')}. "
                         f"Check moved from {ext['from']} to {ext['to']}: {ext['reason']}")
            section.signature(f"Inconclusive effectiveness check, iteration {c['iteration']}",
                              ext["signature"])
    for v in (ca or {}).get("verifications", []):
        verdict = "effective" if v["effective"] else "NOT effective"
        section.text(f"Iteration {v['iteration']}: {verdict}. {v['note']}")
        section.signature(f"Effectiveness verification, iteration {v['iteration']}",
                          v["signature"])
    impacts = (ca or {}).get("impacts") or []
    # R11, ISO 13485 8.5.2 e: the actions do not adversely affect safety, performance or
    # regulatory compliance.
    for i in impacts:
        section.text(f"No adverse effect on safety, performance or regulatory compliance (ISO "
                     f"13485 8.5.2 e), iteration {i['iteration']}, assessed by {i['by']} at "
                     f"{i['at']}: {i['statement']}")
        section.table(["risk file", "document changes", "training"],
                      [[i["risk_file"], i["changes"], i["training"]]])
    if ca and ca["closure"]:
        section.text(f"{ca['id']} closed together with "
                     f"{', '.join(ca['closure']['closed_ncs']) or 'no NC'}.")
        section.signature(f"Closure of {ca['id']}", ca["closure"]["signature"])
    for nc in ncs:
        if nc["closure"] and nc["closure"]["signature"]:
            section.signature(f"Closure of {nc['id']} (no CA required)",
                              nc["closure"]["signature"])
    # A migrated record's earlier steps happened in the legacy system (SPEC §10): say so.
    for migrated in (ca, *ncs):
        if migrated and migrated.get("migration"):
            section.text(f"{migrated['id']}: {migrated['migration']['note']}.")
    if _legacy(ca, "effectiveness"):
        section.text(f"Effectiveness in the legacy system: {_legacy(ca, 'effectiveness')}")
    record = ca or ncs[0]
    if record.get("cancellation"):
        c = record["cancellation"]
        section.text(f"Cancelled by {c['by']} at {c['at']}: {c['reason']}")
    if not section.blocks:
        section.text(f"Not closed yet (status {record['status']}).")
    return section


def _legacy(ca: dict[str, Any] | None, name: str) -> str | None:
    """A value of a migrated CA as the legacy register gave it."""
    value = ((ca or {}).get("migration") or {}).get(name)
    return str(value) if value else None
