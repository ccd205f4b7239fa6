"""The read-table rows of every NC and CA, folded from the event log alone in one ordered pass.

`audit verify` compares them with the read tables, and the CSV export is made from them, because
what capa reports as evidence must come from the events, never from a table that anyone who can
write the store could edit (SPEC §9.1).

The log is read in one consistent snapshot (a read-only SQLite connection in one transaction, or
one REPEATABLE READ transaction on PostgreSQL), in record order, so that only one record is
folded at a time: memory does not grow with the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from capa.adapters.logreader import LogReader, log_reader
from capa.domain.record import Record, record_uuid
from capa.readmodels import projection

__all__ = ["Folded", "LogReader", "confirmed_external_refs", "folded", "latest_cause",
           "log_reader", "record_topics"]


@dataclass
class Folded:
    """One NC or CA as the read tables should hold it (an NC's cause_category aside, which
    comes from its CAs: see `cause_categories`)."""

    ref: str
    kind: str
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def record_topics(reader: LogReader) -> dict[str, str]:
    """The topics in the log of NC and CA events, each with its kind ("nc" or "ca")."""
    kinds: dict[str, str | None] = {}
    topics = reader.query(f"SELECT DISTINCT topic FROM {reader.events_table}")  # noqa: S608
    return {topic: kind for (topic,) in topics
            if (kind := projection._kind(topic, kinds)) is not None}


def folded(app: Any, reader: LogReader, upto: int | None = None, *,
           records: Sequence[UUID] | None = None,
           topics: dict[str, str] | None = None) -> Iterator[Folded]:
    """Every NC and CA with events at positions up to `upto` (default: the whole log), or only
    those of `records`, folded from those events alone, in record-id order."""
    topics = record_topics(reader) if topics is None else topics
    if not topics or records == []:
        return
    marks = ", ".join("?" for _ in topics)
    limit = upto if upto is not None else reader.last_position()
    among, ids = "", []
    if records is not None:
        # SQLite keeps record ids as hex text; PostgreSQL as UUIDs.
        ids = [r if reader.postgres else r.hex for r in records]
        among = f"AND originator_id IN ({', '.join('?' for _ in ids)}) "
    rows = reader.stream(
        f"SELECT originator_id, originator_version, topic, state FROM {reader.events_table} "  # noqa: S608
        f"WHERE {reader.position} <= ? AND topic IN ({marks}) {among}"
        "ORDER BY originator_id, originator_version", (limit, *topics, *ids))
    mapper = app.mapper
    raised = projection._raised_topic()
    current: Any = None
    record_id: UUID = UUID(int=0)
    pending: StoredEvent | None = None
    record: Any = None
    for originator, version, topic, state in rows:
        if originator != current:
            if current is not None:
                yield _finish(mapper, pending, record, topics)
            current, record_id, pending, record = originator, _uuid(originator), None, None
            item = StoredEvent(originator_id=record_id, originator_version=int(version),
                               topic=str(topic), state=bytes(state))
            if int(version) == 1 and topic == raised:
                # Held back: an NC whose only event is Raised (a bulk import is made of these)
                # gets its row from the event's state, without building the record.
                pending = item
                continue
            record = mapper.to_domain_event(item).mutate(None)
            continue
        item = StoredEvent(originator_id=record_id, originator_version=int(version),
                           topic=str(topic), state=bytes(state))
        if pending is not None:
            record = mapper.to_domain_event(pending).mutate(None)
            pending = None
        record = mapper.to_domain_event(item).mutate(record)
    if current is not None:
        yield _finish(mapper, pending, record, topics)


def _finish(mapper: Any, pending: StoredEvent | None, record: Any,
            topics: dict[str, str]) -> Folded:
    if pending is not None:
        row = projection.raised_row(mapper, pending.state)
        if row is not None:
            return Folded(str(row[0]), "nc", {"nc_summary": [row]})
        record = mapper.to_domain_event(pending).mutate(None)
    assert isinstance(record, Record)
    rows = projection.record_rows(record)
    return Folded(record.ref, "nc" if "nc_summary" in rows else "ca", rows)


def external_refs(app: Any, wanted: Iterable[str] | None = None) -> set[str]:
    """External references NCs in the store hold (of those `wanted`, when given). The read
    table says which NCs hold one; each is confirmed from that NC's own events, so a row added
    or edited outside capa never makes an import skip a row (SPEC §9.1)."""
    return confirmed_external_refs(app, app.read_models.claimed_external_refs(wanted))


def confirmed_external_refs(app: Any, claimed: dict[str, str]) -> set[str]:
    """Of the external references the read table says NCs hold (NC id → reference), those the
    NCs' own events give them."""
    found: set[str] = set()
    refs = list(claimed)
    with log_reader(app) as reader:
        topics = record_topics(reader)
        for start in range(0, len(refs), 500):
            ids = []
            for ref in refs[start:start + 500]:
                try:
                    ids.append(record_uuid(ref))
                except Exception:  # noqa: BLE001 - not a record id: nothing holds it
                    continue
            for item in folded(app, reader, records=ids, topics=topics):
                rows = item.rows.get("nc_summary")
                held = rows[0][projection.COLUMNS["nc_summary"].index("external_ref")] \
                    if rows else None
                if held is not None and held == claimed.get(item.ref):
                    found.add(str(held))
    return found


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def latest_cause(links: Sequence[tuple[int, str | None]]) -> str | None:
    """An NC's cause category: that of its latest-opened CA that has one (as the projection
    sets it), given (sort_key, cause_category) of the CAs linked to it."""
    found = [(key, cause) for key, cause in links if cause is not None]
    return max(found)[1] if found else None
