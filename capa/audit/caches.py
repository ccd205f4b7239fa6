"""Snapshots and read tables checked against the event log (SPEC §9.1: nothing derived is
trusted).

capa never reads a snapshot, and takes none: every record is folded from its events. Stores of
earlier releases still hold snapshot rows, so each one is compared with the fold of its events
up to its version; a row that does not match was edited. Read tables are compared with the rows
folded from the events up to the position the projection has tracked, so tables that merely lag
behind the log are not mistaken for tampering; the comparison never writes.

Every mismatch is reported, naming the table and the record. `readmodels rebuild` repairs them.

Memory stays flat on a large log: records are folded one at a time in record order and
compared a chunk at a time with the rows the tables hold for them (capa.readmodels.replay).

Speed (SPEC §13 P8): the expected rows come from capa.audit.cache_rows, which reads most NCs'
rows from their events' JSON directly. Rows equal to the expected ones are passed over whole;
only rows that are not are looked at column by column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from capa.audit.cache_rows import folded_rows
from capa.audit.errors import TamperDetected
from capa.audit.naming import RecordNames
from capa.domain.record import record_uuid
from capa.readmodels import projection
from capa.readmodels.replay import Folded, LogReader, log_reader, record_topics

__all__ = ["CacheMismatch", "CachesDiffer", "check_caches", "snapshot_table"]

#: Records compared with the tables per query.
_CHUNK = 500
#: Mismatches listed in full; past this many the rest are only counted, so that a whole table
#: replaced neither prints nor holds in memory one entry per row of it.
_LISTED = 10_000


@dataclass(frozen=True)
class CacheMismatch:
    """One row of a cache that does not match the event log."""

    table: str
    record: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"table": self.table, "record": self.record, "problem": self.problem}

    def __str__(self) -> str:
        return f"{self.table} {self.record}: {self.problem}"


class CachesDiffer(TamperDetected):
    """The event log verified, but cached rows do not match it. Carries every mismatch and the
    summary of the log's verification."""

    def __init__(self, mismatches: Sequence[CacheMismatch], summary: dict[str, Any],
                 more: int = 0) -> None:
        count = len(mismatches) + more
        first = mismatches[0]
        super().__init__(f"{count} cached row(s) do not match the event log, first {first}; "
                         "the store was edited outside capa (capa readmodels rebuild repairs "
                         "the caches)")
        self.mismatches = list(mismatches)
        self.summary = {**summary, "status": "caches-differ", "cache_mismatches": count,
                        "mismatches": [m.as_dict() for m in mismatches]}


def snapshot_table(reader: LogReader) -> str:
    """Where eventsourcing kept snapshots: `stored_snapshots`, or `capa_snapshots`."""
    return "capa_snapshots" if reader.postgres else "stored_snapshots"


def check_caches(app: Any, summary: dict[str, Any],
                 names: RecordNames | None = None) -> dict[str, Any]:
    """Return `summary` with what was checked, or raise CachesDiffer naming every snapshot and
    read-table row that does not match the events (records named by `names`)."""
    names = names if names is not None else RecordNames(app)
    found: list[CacheMismatch] = []
    more = 0
    checked = {"snapshots": 0, "read_table_records": 0}
    with log_reader(app) as reader:
        for mismatch in _check(app, names, reader, checked):
            if len(found) < _LISTED:
                found.append(mismatch)
            else:
                more += 1
    if found:
        raise CachesDiffer(found, summary, more=more)
    return {**summary, "caches_checked": checked}


def _check(app: Any, names: RecordNames, reader: LogReader,
           checked: dict[str, int]) -> Iterator[CacheMismatch]:
    yield from _snapshots(app, names, reader, checked)
    yield from _read_tables(app, reader, checked)


# -- snapshots -----------------------------------------------------------------------------


def _snapshots(app: Any, names: RecordNames, reader: LogReader,
               checked: dict[str, int]) -> Iterator[CacheMismatch]:
    table = snapshot_table(reader)
    if not reader.has_table(table):
        return

    topic = get_topic(Snapshot)
    keys = reader.query(f"SELECT originator_id, originator_version FROM {table} "  # noqa: S608
                        "ORDER BY originator_id, originator_version")
    for originator, version in keys:
        checked["snapshots"] += 1
        record_id = originator if isinstance(originator, UUID) else UUID(str(originator))
        name = names(record_id.hex)
        row = reader.query(f"SELECT topic, state FROM {table} "  # noqa: S608
                           "WHERE originator_id = ? AND originator_version = ?",
                           (originator, version))
        if not row:
            continue
        stored_topic, state = row[0]
        label = f"{name} version {version}"
        try:
            record = app.repository.get(record_id, version=int(version))
        except Exception:  # noqa: BLE001 - no such record in the log
            record = None
        if record is None or record.version != int(version):
            yield CacheMismatch(table, label, "the log has no such record version")
            continue
        expected = Snapshot.take(record)
        if stored_topic != topic:
            yield CacheMismatch(table, label, f"not a snapshot (topic {stored_topic})")
            continue
        try:
            stored: Any = app.mapper.to_domain_event(StoredEvent(
                originator_id=record_id, originator_version=int(version), topic=stored_topic,
                state=bytes(state)))
        except Exception:  # noqa: BLE001 - bytes that do not decode were written by hand
            yield CacheMismatch(table, label, "the snapshot cannot be read")
            continue
        want, have = _kept(expected.state), _kept(stored.state)
        if (stored.topic, have) != (expected.topic, want):
            fields = sorted(k for k in {*have, *want} if have.get(k) != want.get(k)) or ["topic"]
            yield CacheMismatch(table, label, f"differs from the events in {', '.join(fields)}")


#: Private attributes a snapshot keeps that say what the record is; the others (such as
#: `_applying`) are the aggregate's working state at the moment it was taken.
_KEPT_PRIVATE = frozenset({"_id", "_version", "_created_on", "_modified_on"})


def _kept(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.startswith("_") or k in _KEPT_PRIVATE}


# -- read tables ---------------------------------------------------------------------------


def _read_tables(app: Any, reader: LogReader,
                 checked: dict[str, int]) -> Iterator[CacheMismatch]:
    present = [t for t in projection.COLUMNS if reader.has_table(t)]
    if not present:
        return  # read models never built on this store: nothing cached
    tracked = reader.query("SELECT position, schema_version FROM rm_tracking WHERE name = ?",
                           (projection.TRACKING_NAME,)) if reader.has_table("rm_tracking") else []
    last = reader.last_position()
    if tracked and tracked[0][1] != projection.SCHEMA_VERSION:
        # Of another shape, the projection drops the tables and builds them again before it
        # answers anything: no row of them is ever read.
        return
    if len(present) < len(projection.COLUMNS):
        for table in projection.COLUMNS:
            if table not in present:
                yield CacheMismatch(table, "(whole table)", "the table is missing")
        return
    if not tracked:
        # The projection would start again from the first event, replacing the rows of every
        # record it folds but keeping rows of records the log does not have: compare with all.
        yield CacheMismatch("rm_tracking", projection.TRACKING_NAME,
                            "the tracked position is missing, but the read tables are there")
        tracked = [(last, projection.SCHEMA_VERSION)]
    position = int(tracked[0][0])
    if position > last or position < 0:
        yield CacheMismatch("rm_tracking", projection.TRACKING_NAME,
                            f"position {position} is not a position of the log (1..{last})")
        position = max(0, min(position, last))
    matched = dict.fromkeys(projection.COLUMNS, 0)
    chunk: list[Folded] = []
    for item in folded_rows(app, reader, upto=position):
        chunk.append(item)
        if len(chunk) == _CHUNK:
            yield from _compare(reader, chunk, matched)
            checked["read_table_records"] += len(chunk)
            chunk = []
    if chunk:
        yield from _compare(reader, chunk, matched)
        checked["read_table_records"] += len(chunk)
    yield from _causes(reader)
    yield from _extra(reader, matched, position)


def _compare(reader: LogReader, chunk: list[Folded],
             matched: dict[str, int]) -> Iterator[CacheMismatch]:
    for table, key in (("nc_summary", "id"), ("ca_summary", "id"), ("action_items", "ca"),
                       ("nc_ca_links", "ca")):
        kind = "nc" if table == "nc_summary" else "ca"
        refs = [item.ref for item in chunk if item.kind == kind]
        if not refs:
            continue
        columns = _compared(table)
        actual: dict[str, list[tuple[Any, ...]]] = {}
        for row in reader.query(
                f"SELECT {', '.join(columns)} FROM {table} "  # noqa: S608
                f"WHERE {key} IN ({', '.join('?' for _ in refs)})", refs):
            actual.setdefault(_text(row[columns.index(key)]), []).append(row)
        for item in chunk:
            if item.kind != kind:
                continue
            expected = [_project(table, row) for row in item.rows.get(table, [])]
            held = actual.get(item.ref, [])
            matched[table] += len(held)
            if _equal(expected, held):
                continue  # every column equal: _differences would find nothing
            yield from _differences(table, item.ref, expected, held, columns)


def _equal(expected: list[tuple[Any, ...]], held: list[tuple[Any, ...]]) -> bool:
    """Whether the held rows are exactly the expected ones, in any order (read tables have a
    primary key, so a row is never held twice; a twice-held row still fails here)."""
    if len(expected) != len(held):
        return False
    if len(expected) == 1:
        return expected[0] == held[0]
    return set(expected) == set(held) and len(set(held)) == len(held)


def _compared(table: str) -> tuple[str, ...]:
    # An NC's cause category comes from its CAs' rows and is checked on its own (_causes).
    return tuple(c for c in projection.COLUMNS[table]
                 if not (table == "nc_summary" and c == "cause_category"))


def _project(table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    columns = projection.COLUMNS[table]
    return tuple(v for c, v in zip(columns, row, strict=True)
                 if not (table == "nc_summary" and c == "cause_category"))


def _differences(table: str, ref: str, expected: list[tuple[Any, ...]],
                 held: list[tuple[Any, ...]], columns: Sequence[str]) -> Iterator[CacheMismatch]:
    width = 2 if table in ("action_items", "nc_ca_links") else 1

    def keyed(rows: list[tuple[Any, ...]]) -> dict[tuple[str, ...], tuple[Any, ...]]:
        return {tuple(_text(v) for v in row[:width]): row for row in rows}

    want, have = keyed(expected), keyed(held)
    for key in sorted(want.keys() | have.keys()):
        label = " ".join(key) if table == "action_items" else (
            f"{key[1]} link to {key[0]}" if table == "nc_ca_links" else key[0])
        if key not in have:
            yield CacheMismatch(table, label, "missing: the events have this row")
        elif key not in want:
            yield CacheMismatch(table, label, "not in the events: the row was added")
        else:
            fields = [c for c, a, b in zip(columns, want[key], have[key], strict=True)
                      if not _same(c, a, b)]
            if fields:
                yield CacheMismatch(table, label,
                                    f"differs from the events in {', '.join(fields)}")


def _same(column: str, expected: Any, held: Any) -> bool:
    if expected == held:
        return True
    if column == "doc" and isinstance(held, str):
        try:
            return bool(json.loads(expected) == json.loads(held))
        except ValueError:
            return False
    if isinstance(expected, int) and not isinstance(expected, bool):
        return isinstance(held, int | float) and expected == held
    return False


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _causes(reader: LogReader) -> Iterator[CacheMismatch]:
    """Each NC's cause category against its linked CAs' rows (themselves checked above)."""
    latest = ("(SELECT ca.cause_category FROM nc_ca_links l JOIN ca_summary ca ON ca.id = l.ca "
              "WHERE l.nc = n.id AND ca.cause_category IS NOT NULL "
              "ORDER BY ca.sort_key DESC LIMIT 1)")
    # SQLite's IS NOT compares NULLs as values, as PostgreSQL's IS DISTINCT FROM does.
    differs = "IS DISTINCT FROM" if reader.postgres else "IS NOT"
    for ref, held, expected in reader.stream(
            f"SELECT n.id, n.cause_category, {latest} FROM nc_summary n "  # noqa: S608
            f"WHERE n.cause_category {differs} {latest} ORDER BY n.sort_key"):
        yield CacheMismatch("nc_summary", str(ref), f"cause_category is {held!r}, but its CAs "
                            f"give {expected!r}")


def _extra(reader: LogReader, matched: dict[str, int], position: int) -> Iterator[CacheMismatch]:
    """Rows of records the log does not have, when a table holds more rows than were matched
    (looked for only then, so a clean store costs one count per table)."""
    topics: dict[str, list[str]] = {"nc": [], "ca": []}
    for topic, kind in record_topics(reader).items():
        topics[kind].append(topic)
    for table, key, kind in (("nc_summary", "id", "nc"), ("ca_summary", "id", "ca"),
                             ("action_items", "ca", "ca"), ("nc_ca_links", "ca", "ca")):
        total = int(reader.query(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608
        if total <= matched[table]:
            continue
        part: list[str] = []
        for (ref,) in reader.stream(f"SELECT DISTINCT {key} FROM {table}"):  # noqa: S608
            part.append(str(ref))
            if len(part) == _CHUNK:
                yield from _unknown(reader, table, part, topics[kind], position)
                part = []
        yield from _unknown(reader, table, part, topics[kind], position)


def _unknown(reader: LogReader, table: str, refs: list[str], topics: list[str],
             position: int) -> Iterator[CacheMismatch]:
    ids: dict[str, UUID | None] = {}
    for ref in refs:
        try:
            ids[ref] = record_uuid(ref)
        except Exception:  # noqa: BLE001 - not even a record id
            ids[ref] = None
    known = _known(reader, [i for i in ids.values() if i is not None], topics, position)
    for ref, record_id in ids.items():
        if record_id is None or record_id not in known:
            yield CacheMismatch(table, ref, "not in the events: the record was added")


def _known(reader: LogReader, ids: list[UUID], topics: list[str], position: int) -> set[UUID]:
    if not ids or not topics:
        return set()
    values: list[Any] = [i if reader.postgres else i.hex for i in ids]
    rows = reader.query(
        f"SELECT DISTINCT originator_id FROM {reader.events_table} "  # noqa: S608
        f"WHERE originator_id IN ({', '.join('?' for _ in ids)}) AND {reader.position} <= ? "
        f"AND topic IN ({', '.join('?' for _ in topics)})", [*values, position, *topics])
    return {r[0] if isinstance(r[0], UUID) else UUID(str(r[0])) for r in rows}
