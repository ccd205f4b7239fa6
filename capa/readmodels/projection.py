"""Read models: NC and CA summaries, action items and links, kept up to date from the event log.

The projection follows the application's notification log. Each batch of new notifications is
folded into the records it touches and written to read tables in the same database, together
with the tracked position, in one transaction: a crash leaves either the old tables and old
position or the new ones, never a mix, so catching up again is always safe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic

from capa.adapters.readtables import (
    COLUMNS,
    READ_TABLES,
    SCHEMA_VERSION,
    TRACKING_NAME,
    ReadTables,
)
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.nonconformity import (
    RAISED_FIELDS,
    RAISED_KEYS,
    Nonconformity,
    fresh_state,
    raised_fields_json,
)
from capa.domain.parts import ActionItem
from capa.domain.record import Record, utc_iso
from capa.domain.refs import sort_key

__all__ = ["COLUMNS", "SCHEMA_VERSION", "TRACKING_NAME", "ReadModels", "raised_row",
           "raised_rows", "record_rows", "sort_key"]

_BATCH = 5000


class _Moved(Exception):
    """Another process advanced the tracked position first; this batch is dropped and redone."""


#: What a Raised event of this release stores, and the record fields it sets, in order (the
#: domain's schema).
_RAISED_FIELDS = RAISED_FIELDS
_RAISED_KEYS = RAISED_KEYS


def _raised_topic() -> str:

    return get_topic(Nonconformity.Raised)  # type: ignore[attr-defined]


def _kind(topic: str, cache: dict[str, str | None]) -> str | None:
    if topic not in cache:
        try:
            cls = resolve_topic(topic)
        except Exception:  # noqa: BLE001 - an event class this release does not know
            cls = None
        cache[topic] = ("nc" if isinstance(cls, type) and issubclass(cls, Nonconformity.Event)
                        else "ca" if isinstance(cls, type)
                        and issubclass(cls, CorrectiveAction.Event) else None)
    return cache[topic]


class ReadModels:
    """The read side of one capa application: catch up, rebuild, and query the read tables."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.tables = ReadTables(app.recorder)
        self.sql = self.tables.sql
        self._ready = False
        self._topics: dict[str, str | None] = {}

    # -- following the log -------------------------------------------------------------------

    def ensure_schema(self) -> None:
        if self._ready:
            return
        version = self.tables.schema_version()
        if version != SCHEMA_VERSION:
            self.tables.create(drop=version is not None)
        self._ready = True

    def position(self) -> int:
        self.ensure_schema()
        return self.tables.position()

    def catch_up(self) -> int:
        """Project every notification after the tracked position; return the new position."""
        self.ensure_schema()
        while True:
            position = self.position()
            notifications = self._app.recorder.select_notifications(
                start=position + 1, limit=_BATCH)
            if not notifications:
                return position
            try:
                self._apply(position, notifications)
            except _Moved:
                continue

    def rebuild(self) -> int:
        """Drop every read table and project the whole log again."""
        self.tables.create(drop=True)
        self._ready = True
        return self.catch_up()

    def remove_snapshots(self) -> int:
        """Delete the snapshot rows earlier releases wrote (capa reads none: SPEC §9.1); return
        how many there were."""
        return self.tables.remove_snapshots()

    def _apply(self, position: int, notifications: Sequence[Any]) -> None:
        groups: dict[UUID, list[Any]] = {}
        for n in notifications:
            if _kind(n.topic, self._topics) is not None:
                groups.setdefault(n.originator_id, []).append(n)
        raised = _raised_topic()
        records: list[Record] = []
        new_ncs: list[tuple[Any, ...]] = []
        for originator, items in groups.items():
            first = items[0]
            if len(items) == 1 and first.originator_version == 1 and first.topic == raised:
                # An NC raised and not yet changed (a bulk import is made of these): its row
                # comes straight from the event's state, with no aggregate to build.
                row = self._raised_row(first)
                if row is not None:
                    new_ncs.append(row)
                    continue
            records.append(self._fold(originator, items))
        self._write(records, expected=position, new=int(notifications[-1].id), nc_rows=new_ncs)

    def _raised_row(self, notification: Any) -> tuple[Any, ...] | None:
        return raised_row(self._app.mapper, notification.state)

    def _fold(self, originator: UUID, notifications: list[Any]) -> Record:
        first = notifications[0].originator_version
        record: Any = None
        if first > 1:
            record = self._app.repository.get(originator, version=first - 1)
        for n in notifications:
            record = self._app.mapper.to_domain_event(n).mutate(record)
        assert isinstance(record, Record)
        return record

    def _write(self, records: Sequence[Record], *, expected: int, new: int,
               nc_rows: Sequence[tuple[Any, ...]] = ()) -> None:
        ncs = [r for r in records if isinstance(r, Nonconformity)]
        cas = [r for r in records if isinstance(r, CorrectiveAction)]
        rows = [_nc_row(r) for r in ncs]
        rows.extend(nc_rows)
        # An NC's cause category is its latest CA's: refresh every NC whose links may have
        # changed.
        touched = {r.ref for r in ncs if r.linked_cas} | {nc for r in cas for nc in r.linked_ncs}
        written = self.tables.write(
            expected=expected, new=new, nc_rows=rows, cas=[r.ref for r in cas],
            ca_rows=[_ca_row(r) for r in cas],
            item_rows=[_item_row(r, item) for r in cas for item in r.items],
            link_rows=[(nc, r.ref) for r in cas for nc in dict.fromkeys(r.linked_ncs)],
            touched=touched)
        if not written:
            raise _Moved

    def follow_import(self, cursor: Any, count: int,
                      rows: Callable[[], Sequence[tuple[Any, ...]]]) -> bool:
        """Write the nc_summary rows (`raised_rows`) of `count` events just inserted by a bulk
        import in the import's own transaction (SQLite), and move the tracked position past
        them, so that the next query has nothing to catch up. Only when those events are all
        the log holds past the position; otherwise (a follower behind, another writer's events)
        nothing is written here and the next query projects them the ordinary way. Whether it
        wrote them."""
        return self.tables.follow_import(cursor, self._app.recorder.events_table_name, count,
                                         rows)

    # -- queries -----------------------------------------------------------------------------

    def ncs(self, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
            sources: Sequence[str] = (), overdue_on: str | None = None) -> list[dict[str, Any]]:
        self.catch_up()
        return [json.loads(doc) for doc in self.tables.nc_docs(
            statuses=statuses, severities=severities, sources=sources, overdue_on=overdue_on)]

    def cas(self, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
            sources: Sequence[str] = (), overdue_on: str | None = None) -> list[dict[str, Any]]:
        self.catch_up()
        return [json.loads(doc) for doc in self.tables.ca_docs(
            statuses=statuses, severities=severities, sources=sources, overdue_on=overdue_on)]

    def overdue(self, today: str) -> list[dict[str, Any]]:
        """Implemented CAs awaiting verification, open items past due and planned effectiveness
        checks past due (SPEC §12), in CA then item order (a CA's check after its items)."""
        self.catch_up()
        rows = self.tables.overdue(today)
        checks: list[dict[str, Any]] = []
        for doc in self.tables.planned_check_docs():
            row = _check_overdue(json.loads(doc), today)
            if row is not None:
                checks.append(row)
        if not checks:
            return rows
        return sorted([*rows, *checks], key=lambda r: (r["sort_key"], r["seq"]))

    def checks_due(self, today: str, days: int = 30) -> list[dict[str, Any]]:
        """The planned effectiveness checks of active CAs due from `today` to `days` later,
        not yet answered (those already past due are overdue), in due-date order."""
        self.catch_up()
        limit = (dt.date.fromisoformat(today) + dt.timedelta(days=days)).isoformat()
        due = []
        for text in self.tables.planned_check_docs():
            doc = json.loads(text)
            current = [c for c in doc.get("checks") or [] if c["iteration"] == doc["iteration"]]
            if current and current[-1]["state"] == "planned" and \
                    today <= current[-1]["due"] <= limit:
                due.append({"ca": doc["id"], "due": current[-1]["due"],
                            "criteria": current[-1]["criteria"], "owner": doc["owner"]})
        return sorted(due, key=lambda c: (c["due"], sort_key(c["ca"])))

    def reminder_candidates(self, due_by: str) -> list[str]:
        """The CAs awaiting verification or with an open item due by `due_by` (a claim only:
        capa notify reads each one from its events before it reminds anyone)."""
        self.catch_up()
        return self.tables.reminder_candidates(due_by)

    def open_ncs_of_product(self, product: str) -> list[dict[str, Any]]:
        """`id`, `status` and `title` of the NCs not closed or cancelled whose product is
        `product` (case and surrounding spaces aside), caught up first."""
        self.catch_up()
        return self.tables.open_ncs_of_product(product)

    def claimed_external_refs(self, wanted: Iterable[str] | None = None) -> dict[str, str]:
        """NC → external reference, as the read table has it (of those `wanted`, when given).
        A claim only: `capa.readmodels.replay.external_refs` confirms each from the events."""
        self.catch_up()
        rows = self.tables.external_refs()
        keep = None if wanted is None else set(wanted)
        return {str(row["id"]): str(row["external_ref"]) for row in rows
                if keep is None or row["external_ref"] in keep}

    def count(self, name: str) -> int:
        """Rows in one read table (caught up first)."""
        if name not in READ_TABLES:
            raise ValueError(f"not a read table: {name}")
        self.catch_up()
        return self.tables.count(name)

    def table(self, name: str, order: str = "") -> list[dict[str, Any]]:
        """Every row of one read table (without the documents), for reports and exports."""
        self.catch_up()
        return self.tables.table(name, order)


def raised_row(mapper: Any, data: bytes) -> tuple[Any, ...] | None:
    """The nc_summary row of a record whose only event is `Raised` (its stored state given), as
    `_nc_row` would make it from the folded record; None when the state is not the shape this
    release records (an older or newer class version), which is then folded the ordinary way."""
    if mapper.cipher:
        data = mapper.cipher.decrypt(data)
    if mapper.compressor:
        data = mapper.compressor.decompress(data)
    state = mapper.transcoder.decode(data)
    if "class_version" in state or set(state) != _RAISED_KEYS:
        return None
    at = utc_iso(state["timestamp"])
    doc = {"id": state["ref"], "version": 1, "created_at": at, "updated_at": at}
    doc.update((k, state[k]) for k in _RAISED_FIELDS)
    doc.update(fresh_state())
    return _nc_row_of(doc)


def raised_rows(refs: Sequence[str], fields: Mapping[str, Sequence[str | None]], user: str,
                at: str, shared: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    """The nc_summary rows of new NCs raised together at `at` (UTC ISO) by `user`, from their
    field values, as `FRESH_COLUMNS` (capa.adapters.readtables): the rows `raised_row` makes
    from their stored events, without decoding them (a test holds the two to the same rows).
    `shared` is what `capa.domain.nonconformity.raised_fields_json(fields)` gives, when the
    caller already has it (the events were built from it).

    The document is the JSON `json.dumps(doc, ensure_ascii=False, separators=(",", ":"))`
    writes, assembled from escaped strings: every value is text or fixed, and encoding a dict
    per row cost more than the import's own events."""
    if shared is None:
        shared = raised_fields_json(fields)
    q = encode_basestring
    head = f',"version":1,"created_at":{q(at)},"updated_at":{q(at)},"ref":'
    tail = f',"reported_by":{q(user)},{_FRESH_STATE}}}'
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for ref, members, title, source, severity, product, lot, external, detected_on in zip(
            refs, shared, *(fields[name] for name in _SUMMARY_VALUES), strict=True):
        quoted = q(ref)
        append((ref, sort_key(ref), severity, source, product, lot,
                title, external, detected_on, at,
                f'{{"id":{quoted}{head}{quoted},{members}{tail}'))
    return rows


#: The fields of a new NC that nc_summary has a column for, as `raised_rows` unpacks them.
_SUMMARY_VALUES = ("title", "source", "severity", "product", "lot", "external_ref", "detected_on")
#: The members of a new NC's document after its fields, as JSON.
_FRESH_STATE = json.dumps(fresh_state(), separators=(",", ":"))[1:-1]


def record_rows(record: Record) -> dict[str, list[tuple[Any, ...]]]:
    """The rows one folded NC or CA has in each read table, as `_upsert` writes them (an NC's
    cause_category, which comes from its CAs, left empty)."""
    if isinstance(record, Nonconformity):
        return {"nc_summary": [_nc_row(record)]}
    if isinstance(record, CorrectiveAction):
        return {"ca_summary": [_ca_row(record)],
                "action_items": [_item_row(record, item) for item in record.items],
                "nc_ca_links": [(nc, record.ref) for nc in dict.fromkeys(record.linked_ncs)]}
    return {}


def _fast_data(record: Record) -> dict[str, Any]:
    """The record as the `show` query presents it (`Record.fields()` with its id and times),
    without the defensive deep copy: the dict is serialised at once and dropped, and copying
    every field was the largest cost of projecting a bulk import."""
    data: dict[str, Any] = {"id": record.ref, "version": record.version,
                            "created_at": utc_iso(record.created_on),
                            "updated_at": utc_iso(record.modified_on)}
    data.update((k, v) for k, v in record.__dict__.items() if not k.startswith("_"))
    if isinstance(record, CorrectiveAction):
        data["root_cause"] = record.root_cause
    return data


def _nc_row(nc: Nonconformity) -> tuple[Any, ...]:
    return _nc_row_of(_fast_data(nc))


def _nc_row_of(doc: dict[str, Any]) -> tuple[Any, ...]:
    """The nc_summary row of an NC given as its document (`_fast_data`)."""
    ref, closure = doc["id"], doc["closure"]
    # A record migrated closed reports its legacy closing date (SPEC §10), not the migration's.
    closed_at = (closure.get("closed_on") or closure["at"]) if closure else None
    assessment = doc["assessment"]
    level = assessment.get("risk_level") if isinstance(assessment, dict) else None
    return (ref, sort_key(ref), doc["status"], doc["severity"], doc["source"], doc["product"],
            doc["lot"], doc["title"], doc["external_ref"], doc["detected_on"],
            doc["created_at"], closed_at, None, level,
            json.dumps(doc["linked_cas"]), doc["version"],
            json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def _ca_row(ca: CorrectiveAction) -> tuple[Any, ...]:
    data = _fast_data(ca)
    first = ca.verifications[0]["effective"] if ca.verifications else None
    closed_at = ca.closure["signature"]["signed_at"] if ca.closure else None
    opened_at = data["created_at"]
    migration: dict[str, Any] | None = data.get("migration")
    if migration is not None:
        # A migrated CA reports its legacy business dates and effectiveness (SPEC §10) until
        # capa itself verifies or closes it.
        opened_at = migration["opened_on"]
        if first is None:
            first = migration["effective"]
        if closed_at is None and ca.status == "closed":
            closed_at = migration["closed_on"]
    category = ca.root_cause["category"] if ca.root_cause else None
    return (ca.ref, sort_key(ca.ref), ca.status, ca.owner, ca.title, ca.iteration,
            opened_at, closed_at, None if first is None else int(first), category,
            json.dumps(ca.linked_ncs), ca.version,
            json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _item_row(ca: CorrectiveAction, item: ActionItem) -> tuple[Any, ...]:
    return (ca.ref, item["number"], int(item["number"][1:]), item["iteration"], item["type"],
            item["text"], item["assignee"], item["due"], item["state"], item["completed_at"])


def _check_overdue(doc: dict[str, Any], today: str) -> dict[str, Any] | None:
    """The overdue row of a CA whose current planned effectiveness check is past due and not
    yet answered, else None."""
    current = [c for c in doc.get("checks") or [] if c["iteration"] == doc["iteration"]]
    if not current or current[-1]["state"] != "planned" or current[-1]["due"] >= today:
        return None
    check = current[-1]
    return {"ca": doc["id"], "sort_key": sort_key(doc["id"]), "seq": 1 << 30,
            "kind": "check-overdue", "action": None, "title": check["criteria"],
            "owner": doc["owner"], "assignee": None, "due": check["due"],
            "status": doc["status"]}


def today_utc() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()
