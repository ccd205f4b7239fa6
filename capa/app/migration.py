"""Migrating a legacy register's history (SPEC §10): rows that carry a status, a closing date or
corrective-action columns become records marked *migrated*.

Each such row is raised as an NC as any imported row is, then a `Migrated` event names where it
came from (system, file and its SHA-256, row), keeps the legacy values as the register had
them, and brings the record to its legacy state; a CA the row gives is opened, linked and
migrated in the same atomic save. The business dates (detected, closed) are the legacy ones,
so the read models, dashboard and KPIs report them. Re-running the same file writes nothing:
rows are recognised by external reference, or by file digest and row where a row has none.

Size: planning and saving a migration share its legacy columns, states and dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from capa.app.import_rows import (
    MIGRATION_FIELDS,
    ImportReport,
    Row,
    RowError,
    clean,
    column_reader,
    normal_name,
    parse_day,
)
from capa.domain.corrective_action import CorrectiveAction
from capa.domain.errors import Conflict, InvalidInput, NotPermitted
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import record_uuid
from capa.domain.refs import RecordRef
from capa.domain.values import CONTROL, LINE_LIMIT, TEXT_LIMIT
from capa.readmodels import replay

if TYPE_CHECKING:
    from capa.app.core import Core as CapaApplication

#: The fields that describe a corrective action; any of them given makes one.
CA_FIELDS = ("root_cause", "ca_action", "ca_owner", "ca_opened_on", "ca_closed_on",
             "effectiveness")
#: Column names (normalised: lower case, `_` for spaces and dashes) that feed a legacy field by
#: themselves. Deliberately exact: a column such as "State" (a US state) must never be read as
#: a status.
HEADER_NAMES = {
    "status": "status", "legacy_status": "status", "capa_status": "status",
    "nc_status": "status",
    "closed_on": "closed_on", "closed_date": "closed_on", "date_closed": "closed_on",
    "closure_date": "closed_on", "close_date": "closed_on",
    "root_cause": "root_cause",
    "ca_action": "ca_action", "corrective_action": "ca_action",
    "ca_owner": "ca_owner", "action_owner": "ca_owner",
    "ca_opened_on": "ca_opened_on", "ca_open_date": "ca_opened_on",
    "ca_closed_on": "ca_closed_on", "ca_closed_date": "ca_closed_on",
    "ca_close_date": "ca_closed_on",
    "effectiveness": "effectiveness", "effectiveness_check": "effectiveness",
}
#: Words legacy registers use for a record's state.
STATUS_WORDS = {
    "open": "open", "opened": "open", "new": "open", "in progress": "open",
    "in-progress": "open", "ongoing": "open", "pending": "open", "active": "open",
    "closed": "closed", "close": "closed", "complete": "closed", "completed": "closed",
    "done": "closed", "resolved": "closed",
    "cancelled": "cancelled", "canceled": "cancelled", "void": "cancelled",
    "voided": "cancelled", "withdrawn": "cancelled",
}
#: Effectiveness read as a verdict only where the register says so plainly: a one-word answer,
#: or a text that starts with the verdict ("No recurrence in 3 months" is no verdict).
_NOT_EFFECTIVE = re.compile(r"^(not effective|ineffective|in-effective|not verified)\b|"
                            r"^(no|n|false|fail|failed)$", re.IGNORECASE)
_EFFECTIVE = re.compile(r"^effective\b|^(yes|y|true|pass|passed|verified)$", re.IGNORECASE)
#: Rows saved per atomic batch: each row is one to three records.
BATCH_ROWS = 500
DEFAULT_SYSTEM = "spreadsheet"


@dataclass(frozen=True)
class LegacySource:
    """Where the rows come from, as the Migrated events name it."""

    system: str
    file: str
    sha256: str

    @classmethod
    def of_file(cls, path: Path, system: str = DEFAULT_SYSTEM) -> LegacySource:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return cls(system=_one_line(system) or DEFAULT_SYSTEM, file=_one_line(path.name),
                   sha256=digest)

    @classmethod
    def of_rows(cls, header: Sequence[str], rows: Sequence[Row],
                system: str = DEFAULT_SYSTEM) -> LegacySource:
        """Rows handed over without a file: their digest is that of their JSON."""
        data = json.dumps([list(header), [_cells(r, header) for r in rows]],
                          ensure_ascii=False, separators=(",", ":"))
        return cls(system=_one_line(system) or DEFAULT_SYSTEM, file="(rows)",
                   sha256=hashlib.sha256(data.encode("utf-8")).hexdigest())


def _one_line(text: str) -> str:
    return " ".join(CONTROL.sub(" ", text).split())[:LINE_LIMIT]


def _cells(row: Row, header: Sequence[str]) -> list[str | None]:
    if isinstance(row, Mapping):
        return [row.get(name) for name in header]
    return list(row)


@dataclass
class LegacyRow:
    """A valid legacy row: what its events will record."""

    index: int
    row: int
    status: str
    closed_on: str | None
    values: dict[str, str]
    ca: dict[str, Any] | None
    ca_status: str | None
    note: str


@dataclass
class Plan:
    rows: list[LegacyRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def legacy_columns(header: Sequence[str], mapping: Mapping[str, str],
                   columns: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Legacy field -> its columns: those `--map` named (already in `columns`), then columns
    named like a legacy field."""
    found = {name: list(cols) for name, cols in columns.items() if name in MIGRATION_FIELDS}
    mapped = set(mapping)
    for column in header:
        name = HEADER_NAMES.get(normal_name(column))
        if name is not None and name not in found and column not in mapped:
            found[name] = [column]
    return found


def wanted(legacy: Mapping[str, list[str]], constants: Mapping[str, str]) -> bool:
    return bool(legacy) or any(normal_name(k) in MIGRATION_FIELDS for k in constants)


def plan(app: CapaApplication, rows: Sequence[Row], header: Sequence[str],
         columns: Mapping[str, list[str]], legacy: Mapping[str, list[str]],
         constants: Mapping[str, str], today: dt.date, *,
         date_format: str | None = None) -> Plan:
    """Every row checked against the migration rules; the reasons the others cannot migrate.
    Only quality may migrate: it brings records to closed or cancelled, as `nc close` does."""
    try:
        app.authorise("nc close")
    except NotPermitted as refused:
        raise NotPermitted(f"migrating a register's history needs the quality role: "
                           f"{refused}") from None

    cells_of = column_reader(rows, header)
    fixed = {normal_name(k): v for k, v in constants.items()}
    _check_constants(fixed, today, date_format)

    def column(name: str, cols: Mapping[str, list[str]]) -> list[tuple[str, str]]:
        """(cleaned text, raw text) of a field in every row; a constant fills empty cells."""
        out = [("", "")] * len(rows)
        if name in cols:
            parts = [list(cells_of(c)) for c in cols[name]]
            out = []
            for cells in zip(*parts, strict=True):
                raw = " ".join(c.strip() for c in cells if c and c.strip())
                out.append((clean(raw, multiline=name in ("root_cause", "ca_action")), raw))
        if name in fixed:
            constant = clean(fixed[name])
            out = [(t, r) if t else (constant, fixed[name]) for t, r in out]
        return out

    if "status" not in legacy and "status" not in fixed:
        given = ", ".join(sorted({c for cols in legacy.values() for c in cols}))
        raise InvalidInput(f"the file has legacy columns ({given}) but no status: map one with "
                           "--map COLUMN=status, or give one with --set status=closed")
    fields = {name: column(name, legacy) for name in MIGRATION_FIELDS}
    detected = column("detected_on", columns)
    has_ca_columns = any(name in legacy or name in fixed for name in CA_FIELDS)
    where = {name: "+".join(legacy[name]) if name in legacy else
             f"--set {name}" if name in fixed else name for name in MIGRATION_FIELDS}
    result = Plan()
    users: dict[str, bool] = {}

    def user_ok(uid: str) -> bool:
        if uid not in users:
            found = app.find_user(uid)
            users[uid] = bool(found is not None and getattr(found, "active", True))
        return users[uid]

    for index in range(len(rows)):
        row = index + 2
        problems: list[RowError] = []

        def refuse(name: str, reason: str, _p: list[RowError] = problems,
                   _r: int = row) -> None:
            _p.append(RowError(_r, where.get(name, name), reason))

        def day(name: str, label: str, _i: int = index) -> dt.date | None:
            text = fields[name][_i][0]
            if not text:
                return None
            try:
                value = parse_day(text, date_format)
            except ValueError as exc:
                refuse(name, f"{label}: {exc}")
                return None
            if value > today:
                refuse(name, f"{label} {value} is in the future")
                return None
            return value

        try:
            seen = (parse_day(detected[index][0], date_format) if detected[index][0]
                    else today)
        except ValueError:
            seen = None  # reported by the NC checks
        word = fields["status"][index][0]
        status = STATUS_WORDS.get(word.lower()) if word else None
        if not word:
            refuse("status", "status is empty: give open, closed or cancelled")
        elif status is None:
            refuse("status", f"status {word!r} is not one of: open, closed, cancelled")
        closed = day("closed_on", "closed-on")

        def not_before(value: dt.date | None, name: str, label: str, floor: dt.date | None,
                       floor_label: str, _i: int = index) -> None:
            if value is not None and floor is not None and value < floor:
                hint = (" (a row without a detection date counts as detected today)"
                        if floor_label == "detected-on" and not detected[_i][0] else "")
                refuse(name, f"{label} {value} is before {floor_label} {floor}{hint}")

        not_before(closed, "closed_on", "closed-on", seen, "detected-on")
        if status == "closed" and not fields["closed_on"][index][0]:
            refuse("closed_on", "a closed record needs its closing date (closed_on)")
        if status == "open" and closed is not None:
            refuse("closed_on", f"status is open but closed-on {closed} is given")
        ca_given = any(fields[name][index][0] for name in CA_FIELDS)
        ca: dict[str, Any] | None = None
        ca_status: str | None = None
        if ca_given:
            opened = day("ca_opened_on", "ca-opened-on")
            ca_closed = day("ca_closed_on", "ca-closed-on")
            not_before(opened, "ca_opened_on", "ca-opened-on", seen, "detected-on")
            not_before(ca_closed, "ca_closed_on", "ca-closed-on", opened or seen,
                       "ca-opened-on" if opened else "detected-on")
            for name, limit in (("root_cause", TEXT_LIMIT), ("ca_action", TEXT_LIMIT),
                                ("ca_owner", LINE_LIMIT), ("effectiveness", LINE_LIMIT)):
                text = fields[name][index][0]
                if len(text) > limit:
                    refuse(name, f"{name} is {len(text):,} characters long; at most {limit:,}")
                elif limit == LINE_LIMIT and CONTROL.search(text):
                    refuse(name, f"{name} must be one line, without tabs or control characters")
            owner = fields["ca_owner"][index][0] or None
            if fields["ca_closed_on"][index][0]:
                ca_status = "closed"
            elif status == "cancelled":
                ca_status = "cancelled"
            else:
                ca_status = "open"
            if status == "closed" and ca_status != "closed":
                refuse("ca_closed_on", "the record is closed but its CA has no closing date "
                                       "(ca_closed_on): give the CA's closing date")
            if status == "open" and ca_status == "closed":
                refuse("ca_closed_on", "the CA is closed but the record is open: give the "
                                       "record's status and closing date")
            if ca_status == "open" and owner is not None and not user_ok(owner):
                refuse("ca_owner", f"the CA stays open and its owner {owner!r} is not a user of "
                                   "this store: add the user, or leave the cell empty to own it")
            effectiveness = fields["effectiveness"][index][0] or None
            ca = {"root_cause": fields["root_cause"][index][0] or None,
                  "action": fields["ca_action"][index][0] or None,
                  "legacy_owner": owner,
                  "opened_on": (opened or seen or today).isoformat(),
                  "opened_on_given": opened is not None,
                  "closed_on": ca_closed.isoformat() if ca_closed else None,
                  "effectiveness": effectiveness,
                  "effective": _effective(effectiveness)}
        if problems:
            result.errors.extend(problems)
            continue
        assert status is not None
        note = ("" if ca_given else
                "; the legacy register has no corrective-action columns" if not has_ca_columns
                else "; the legacy register gives no corrective action for this row")
        values = {col: raw for name in MIGRATION_FIELDS for col, raw in
                  ((where[name], fields[name][index][1]),) if raw}
        result.rows.append(LegacyRow(
            index=index, row=row, status=status,
            closed_on=closed.isoformat() if closed else None, values=values, ca=ca,
            ca_status=ca_status, note=note))
    return result


def _check_constants(fixed: Mapping[str, str], today: dt.date,
                     date_format: str | None = None) -> None:
    """A `--set` of a legacy field must be valid in itself, whether or not a row uses it."""
    word = clean(fixed.get("status"))
    if "status" in fixed and STATUS_WORDS.get(word.lower()) is None:
        raise InvalidInput(f"--set status={fixed['status']!r}: not one of open, closed, "
                           "cancelled")
    for name in ("closed_on", "ca_opened_on", "ca_closed_on"):
        if name in fixed:
            try:
                day = parse_day(clean(fixed[name]), date_format)
            except ValueError as exc:
                raise InvalidInput(f"--set {name}={fixed[name]!r}: {exc}") from None
            if day > today:
                raise InvalidInput(f"--set {name}={fixed[name]!r}: {day} is in the future")


def _effective(text: str | None) -> bool | None:
    """Effectiveness as the register wrote it, read as yes/no where it says so plainly."""
    if not text:
        return None
    if _NOT_EFFECTIVE.match(text):
        return False
    if _EFFECTIVE.match(text):
        return True
    return None


def statement(source: LegacySource, row: int, user: str, status: str, on: str | None) -> str:
    """What history and show say about a migrated record."""
    when = f" on {on}" if on else ""
    return (f"Migrated from {source.system} ({source.file}, row {row}) by {user}: legacy status "
            f"{status}{when}; the earlier steps happened in the legacy system")


def already_migrated(app: CapaApplication) -> tuple[set[tuple[str, int]], set[Any]]:
    """(file digest, row) of every migrated NC, and the ids of those NCs, read from the
    Migrated events themselves (the read tables are never trusted for what to skip)."""
    topic = get_topic(Nonconformity.Migrated)
    rows: set[tuple[str, int]] = set()
    ids: set[Any] = set()
    start = 1
    while True:
        found = app.recorder.select_notifications(start=start, limit=1000, topics=[topic])
        if not found:
            return rows, ids
        for notification in found:
            event: Any = app.mapper.to_domain_event(notification)
            rows.add((str(event.provenance.get("sha256")), int(event.provenance.get("row", 0))))
            ids.add(notification.originator_id)
        start = int(found[-1].id) + 1


def run(app: CapaApplication, valid: Mapping[str, Sequence[str | None]], legacy: Plan,
        source: LegacySource, user: str, report: ImportReport, *, dry_run: bool,
        progress: Callable[[int], None] | None = None) -> ImportReport:
    """Skip what an earlier run migrated, then save the rest in atomic batches."""

    done_rows, done_ids = already_migrated(app)
    refs = [r for r in valid["external_ref"] if r]
    existing = replay.external_refs(app, refs)
    holder: dict[str, str] = {}
    if existing:
        found = app.read_models.sql.query(
            "SELECT id, external_ref FROM nc_summary WHERE external_ref IS NOT NULL")
        holder = {str(r["external_ref"]): str(r["id"]) for r in found
                  if r["external_ref"] in existing}
    seen: set[str] = set()
    keep: list[LegacyRow] = []
    for item in legacy.rows:
        ref = valid["external_ref"][item.index]
        if ref is None:
            report.without_external_ref += 1
            if (source.sha256, item.row) in done_rows:
                report.already_migrated += 1
                continue
        elif ref in existing:
            nc = holder.get(ref)
            if nc is not None and record_uuid(nc) in done_ids:
                report.already_migrated += 1
            else:
                report.skipped_existing += 1
            continue
        elif ref in seen:
            report.skipped_duplicate += 1
            continue
        else:
            seen.add(ref)
        keep.append(item)
    if dry_run:
        report.imported = report.migrated = len(keep)
        return report
    for start in range(0, len(keep), BATCH_ROWS):
        batch = keep[start:start + BATCH_ROWS]
        saved = _save(app, valid, batch, source, user)
        report.imported += len(saved)
        report.migrated += len(saved)
        report.first_id = report.first_id or saved[0]
        report.last_id = saved[-1]
        if progress is not None:
            progress(len(saved))
    return report


def _save(app: CapaApplication, valid: Mapping[str, Sequence[str | None]],
          batch: Sequence[LegacyRow], source: LegacySource, user: str) -> list[str]:
    """One atomic save of a batch's records; the NC refs saved, in order. Numbers are taken
    once per batch; a concurrent writer who took one makes the batch numbered again."""
    year = dt.datetime.now(dt.UTC).year
    wanted_cas = sum(1 for item in batch if item.ca is not None)
    for _ in range(20):
        first_nc = app.next_number("NC", year)
        first_ca = app.next_number("CA", year) if wanted_cas else 0
        records: list[Any] = []
        saved: list[str] = []
        cas = 0
        for offset, item in enumerate(batch):
            ref = str(RecordRef.new("NC", year, first_nc + offset))
            ca_ref = None
            if item.ca is not None:
                ca_ref = str(RecordRef.new("CA", year, first_ca + cas))
                cas += 1
            records.extend(_records(valid, item, ref, ca_ref, source, user))
            saved.append(ref)
        try:
            app.save(*records)
        except IntegrityError:
            continue
        return saved
    raise Conflict("could not allocate record numbers for the migration; the batches saved so "
                   "far stay, and a re-run skips them")


def _records(valid: Mapping[str, Sequence[str | None]], item: LegacyRow, ref: str,
             ca_ref: str | None, source: LegacySource, user: str) -> list[Any]:
    i = item.index
    value: Callable[[str], str | None] = lambda name: valid[name][i]  # noqa: E731
    nc = Nonconformity.raise_new(
        ref=ref, title=value("title") or "", description=value("description") or "",
        source=value("source") or "", severity=value("severity") or "",
        product=value("product"), lot=value("lot"), external_ref=value("external_ref"),
        detected_on=value("detected_on") or "", reported_by=user)
    provenance = {"system": source.system, "file": source.file, "sha256": source.sha256,
                  "row": item.row, "values": item.values}
    records: list[Any] = [nc]
    if item.ca is not None and ca_ref is not None and item.ca_status is not None:
        ca = CorrectiveAction.open_new(
            ref=ca_ref, title=nc.title, problem=nc.description,
            owner=item.ca["legacy_owner"] or user, linked_ncs=[ref])
        ca.migrate(provenance, item.ca, item.ca_status,
                   statement(source, item.row, user, item.ca_status, item.ca["closed_on"])
                   + ("" if item.ca["opened_on_given"]
                      else "; the register gives no CA opening date, so the NC's detection "
                         "date stands for it"))
        records.append(ca)
    nc.migrate(provenance, item.status, item.closed_on, ca_ref,
               statement(source, item.row, user, item.status, item.closed_on) + item.note)
    return records
