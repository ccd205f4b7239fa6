"""The rows the read tables should hold, folded from the events (for capa.audit.caches).

Speed (SPEC §13 P8): an NC whose events are only `Raised` and `Amended` of the shapes this
release records (most of a large log: imports and corrections) gets its row from the events'
JSON directly, as the fold would make it, without building events or the record (a correction
that a later one of the same field overwrites is not even decoded); any other record is folded
in full.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from capa.domain.nonconformity import Nonconformity
from capa.domain.record import Record, utc_iso
from capa.domain.values import AMENDABLE_NC_FIELDS
from capa.readmodels import projection
from capa.readmodels.replay import Folded, LogReader, record_topics

__all__ = ["folded_rows"]

#: The keys of an `Amended` event this release records.
_AMENDED_KEYS = frozenset({"timestamp", "actor", "field", "old", "new", "reason"})


def folded_rows(app: Any, reader: LogReader, upto: int) -> Iterator[Folded]:
    """The rows of every NC and CA with events at positions up to `upto`, in record-id order,
    as `capa.readmodels.replay.folded` makes them (a test holds the two to the same rows)."""
    topics = record_topics(reader)
    if not topics:
        return

    mapper = app.mapper
    light = not mapper.cipher and not mapper.compressor
    raised = projection._raised_topic()
    amended = get_topic(Nonconformity.Amended)  # type: ignore[attr-defined]
    marks = ", ".join("?" for _ in topics)
    rows = reader.stream(
        f"SELECT originator_id, originator_version, topic, state FROM {reader.events_table} "  # noqa: S608
        f"WHERE {reader.position} <= ? AND topic IN ({marks}) "
        "ORDER BY originator_id, originator_version", (upto, *topics))
    current: Any = None
    events: list[tuple[Any, ...]] = []
    for row in rows:
        if row[0] != current:
            if events:
                yield _fold_one(mapper, events, light, raised, amended)
            current, events = row[0], []
        events.append(row)
    if events:
        yield _fold_one(mapper, events, light, raised, amended)


def _fold_one(mapper: Any, events: list[tuple[Any, ...]], light: bool, raised: str,
              amended: str) -> Folded:
    if light:
        row = _nc_row(events, raised, amended)
        if row is not None:
            return Folded(str(row[0]), "nc", {"nc_summary": [row]})

    originator = events[0][0]
    record_id = originator if isinstance(originator, UUID) else UUID(str(originator))
    record: Any = None
    for _, version, topic, state in events:
        record = mapper.to_domain_event(StoredEvent(
            originator_id=record_id, originator_version=int(version), topic=str(topic),
            state=bytes(state))).mutate(record)
    assert isinstance(record, Record)
    rows = projection.record_rows(record)
    return Folded(record.ref, "nc" if "nc_summary" in rows else "ca", rows)


def _nc_row(events: list[tuple[Any, ...]], raised: str, amended: str) -> tuple[Any, ...] | None:
    """The nc_summary row of an NC whose events are one `Raised` and any `Amended`, all of the
    shapes this release records, read from their JSON as the fold sets the record's fields;
    None for any other record or shape (an upcast class version, a value that is not text),
    which is then folded in full."""
    try:
        _, version, topic, state = events[0]
        if version != 1 or topic != raised:
            return None
        data = json.loads(bytes(state).decode("utf8"))
        if type(data) is not dict or data.keys() != projection._RAISED_KEYS:
            return None
        at = _moment(data["timestamp"])
        doc: dict[str, Any] = {"id": data["ref"], "version": 1, "created_at": at,
                               "updated_at": at}
        for name in projection._RAISED_FIELDS:
            value = data[name]
            if value is not None and type(value) is not str:
                return None
            doc[name] = value
        if type(doc["ref"]) is not str:
            return None
        doc.update(status="open", containment=[], assessment=None, linked_cas=[],
                   closure=None, cancellation=None)
        last = at
        # Only the last correction of each field sets a value that stays; the others are
        # looked at only so far as to know which field they correct (see _corrected).
        stays: dict[str, int] = {}
        for expected, (_, version, topic, state) in enumerate(events[1:], start=2):
            if version != expected or topic != amended:
                return None
            corrected = _corrected(bytes(state))
            if corrected is None:
                return None
            stays[corrected] = expected
        for expected in sorted(stays.values()):
            data = json.loads(bytes(events[expected - 1][3]).decode("utf8"))
            if type(data) is not dict or data.keys() != _AMENDED_KEYS:
                return None
            name, new = data["field"], data["new"]
            if stays.get(name) != expected or (new is not None and type(new) is not str):
                return None
            doc[name] = new
            if expected == len(events):
                last = data["timestamp"]
        doc["version"] = len(events)
        if len(events) > 1:
            doc["updated_at"] = _moment(last)
        return projection._nc_row_of(doc)
    except (ValueError, TypeError, KeyError):
        return None  # the full fold says what is wrong with it


#: A JSON string as capa's JSON writes it (UTF-8, escapes only where JSON needs them).
_STRING = rb'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+"'
#: An Amended event's state as this release records it, its keys in the order the event
#: declares them; the group is the field corrected. A state matching it decodes to an object of
#: exactly these keys, with text (or null) for every value but the timestamp.
_AMENDED_STATE = re.compile(
    rb'\{"timestamp":\{"_type_":"datetime_iso","_data_":"[0-9T:.+\-]{1,40}"\},'
    rb'"actor":' + _STRING + rb',"field":"([a-z_]{1,40})",'
    rb'"old":(?:' + _STRING + rb'|null),"new":(?:' + _STRING + rb'|null),'
    rb'"reason":' + _STRING + rb'\}')


def _corrected(state: bytes) -> str | None:
    """The NC field an Amended event's state corrects, found without decoding it, or None when
    the state is anything but an Amended event of the shape this release records for an
    amendable field: decoded in full, such a state sets nothing but that field, which a later
    correction overwrites. One match of one compiled pattern (this runs for most events of a
    large log, SPEC §13 P8)."""
    found = _AMENDED_STATE.fullmatch(state)
    if found is None:
        return None
    name = found.group(1).decode("ascii")
    return name if name in AMENDABLE_NC_FIELDS else None


def _moment(value: Any) -> str:
    """A stored `datetime_iso` value as utc_iso gives the decoded datetime."""
    if type(value) is not dict or value.keys() != {"_type_", "_data_"} \
            or value["_type_"] != "datetime_iso":
        raise TypeError("not a stored datetime")
    return utc_iso(dt.datetime.fromisoformat(value["_data_"]))
