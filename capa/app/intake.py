"""Bulk NC intake from CSV (SPEC §6): rows read and validated (capa.app.import_rows) before
anything is written, then saved in atomic batches that skip external references already in the
store; legacy rows handed to the migration (capa.app.migration); and the exports
(capa.app.export)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from json.encoder import encode_basestring
from typing import Any, cast

from eventsourcing.persistence import IntegrityError, JSONTranscoder
from eventsourcing.utils import get_topic

from capa.adapters.eventlog import (
    EventRow,
    backend_of,
    bulk_insert,
    bulk_insert_joins_transaction,
    stored_id,
)
from capa.app import export, migration
from capa.app.core import Core
from capa.app.import_rows import (
    Columns,
    ImportRejected,
    ImportReport,
    Row,
    check_constants,
    check_date_format,
    resolve_columns,
    validate_columns,
)
from capa.app.operations import operation
from capa.domain.errors import Conflict, InvalidInput
from capa.domain.nonconformity import (
    NC_LINE_FIELDS,
    NC_REQUIRED,
    RAISED_FIELDS,
    Nonconformity,
    raised_fields_json,
)
from capa.domain.refs import RecordRef
from capa.readmodels import replay

#: The NC's fields, those that must be given, and those held to one line: the domain's schema.
REQUIRED = NC_REQUIRED
_LINE_FIELDS = NC_LINE_FIELDS
#: One atomic save per batch: a killed import loses at most the batch in flight, and a re-run
#: skips every external reference already saved.
BATCH_SIZE = 20_000
#: On PostgreSQL, smaller batches: they keep to the recorder's pipelined path (see
#: capa.adapters.pgrecorder) and hold the table lock other writers wait on only briefly.
SERVER_BATCH_SIZE = 1000

class Intake:
    """Imports and exports of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("export")
    def export_events(self) -> Iterator[dict[str, Any]]:
        """Every stored event in log order, decoded (capa.app.export)."""
        return export.export_events(self.core)

    @operation("export")
    def export_records(self) -> list[dict[str, Any]]:
        """Current NCs then CAs, one flat row each, folded from the event log."""
        return export.export_records(self.core)

    @operation("import")
    def import_ncs(
        self, rows: Sequence[Row],
        mapping: Mapping[str, str], dry_run: bool = False, *,
        header: Sequence[str] | None = None, constants: Mapping[str, str] | None = None,
        progress: Callable[[int], None] | None = None, date_format: str | None = None,
        source: migration.LegacySource | None = None,
    ) -> ImportReport:
        """Raise one NC per valid row; refuse the whole file if any row is invalid.

        Idempotent on external_ref: rows whose reference is already in the store, or repeated
        earlier in the file, are skipped, so a re-run (even after an interrupted one) imports
        nothing twice. Dates are ISO unless `date_format` names their layout (DD/MM/YYYY…).
        Rows that carry a legacy status, closing date or CA columns become migrated records
        (capa.app.migration), named after `source`.
        """
        app = self.core
        user = app.actor()
        fixed = dict(constants or {})
        if header is None and rows and not isinstance(rows[0], Mapping):
            raise InvalidInput("rows given as lists need the header")
        names: list[str] = (list(header) if header is not None
                            else list(cast("Mapping[str, str | None]", rows[0])) if rows else [])
        columns = resolve_columns(names, mapping, fixed)
        today = dt.datetime.now(dt.UTC).date()
        check_date_format(date_format)
        check_constants(fixed, today, date_format)
        valid, errors = validate_columns(rows, columns, fixed, today, header=names,
                                         date_format=date_format)
        legacy_columns = migration.legacy_columns(names, mapping, columns)
        legacy = None
        if migration.wanted(legacy_columns, fixed):
            legacy = migration.plan(app, rows, names, columns, legacy_columns, fixed, today,
                                    date_format=date_format)
            errors = sorted([*errors, *legacy.errors], key=lambda e: e.row)
        used = {c for cols in (*columns.values(), *legacy_columns.values()) for c in cols}
        report = ImportReport(rows=len(rows), dry_run=dry_run, errors=errors,
                              ignored_columns=[h for h in names if h not in used and h.strip()])
        if errors:
            raise ImportRejected(report)
        if legacy is not None:
            return migration.run(app, valid, legacy,
                                 source or migration.LegacySource.of_rows(names, rows), user,
                                 report, dry_run=dry_run, progress=progress)
        existing = replay.external_refs(app, (r for r in valid["external_ref"] if r))
        seen: set[str] = set()
        keep: list[int] = []
        for index, ref in enumerate(valid["external_ref"]):
            if ref is None:
                report.without_external_ref += 1
            elif ref in existing:
                report.skipped_existing += 1
                continue
            elif ref in seen:
                report.skipped_duplicate += 1
                continue
            else:
                seen.add(ref)
            keep.append(index)
        fresh = valid
        if len(keep) < len(valid["external_ref"]):
            fresh = {name: [cells[i] for i in keep] for name, cells in valid.items()}
        if dry_run:
            report.imported = len(keep)
            return report
        size = BATCH_SIZE if _on_sqlite(app) else min(BATCH_SIZE, SERVER_BATCH_SIZE)
        for start in range(0, len(keep), size):
            batch = {name: cells[start:start + size] for name, cells in fresh.items()}
            saved = _save_batch(app, batch, user)
            report.imported += len(saved)
            report.first_id = report.first_id or saved[0]
            report.last_id = saved[-1]
            if progress is not None:
                progress(len(saved))
        return report


def _save_batch(app: Core, batch: Columns, user: str) -> list[str]:
    """One atomic insert of a batch's Raised events; the refs saved, in order.

    Numbers are allocated once per batch; if a concurrent writer took one of them, nothing of
    the batch was written and it is numbered again. The read tables and the audit ledger follow
    the event log and catch up before their next query, as they do after any other write.
    """
    year = dt.datetime.now(dt.UTC).year
    # The JSON of the fields an event and its read row share, escaped once for both.
    shared = raised_fields_json(batch)
    for _ in range(20):
        first = app.next_number("NC", year)
        refs = [str(RecordRef.new("NC", year, first + i)) for i in range(len(batch["title"]))]
        try:
            events = raised_events(app, refs, batch, user, shared=shared)
            _insert(app, events, partial(_summary_rows, app, refs, batch, shared, user,
                                         events))
        except IntegrityError:
            continue
        return refs
    raise Conflict("could not allocate record numbers for the import; the batches saved so far "
                   "stay, and a re-run skips them")


def _insert(app: Core, events: list[EventRow],
            summary: Callable[[], Sequence[tuple[Any, ...]]] | None = None) -> None:
    """Insert new events in one transaction (the event-log port's bulk insert); and, where the
    back end runs it in the same transaction and the read tables were up to date, their rows
    for the new NCs (`summary`), so the first query after an import has nothing to catch up
    (projecting 100,000 events afterwards took five times the import itself)."""
    follow: Callable[[Any], None] | None = None
    if summary is not None and bulk_insert_joins_transaction(app.recorder):
        app.read_models.ensure_schema()

        def follow(cursor: Any) -> None:
            app.read_models.follow_import(cursor, len(events), summary)

    bulk_insert(app.recorder, events, follow)


def _summary_rows(app: Core, refs: Sequence[str], batch: Columns,
                  shared: Sequence[str], user: str,
                  events: Sequence[EventRow]) -> Sequence[tuple[Any, ...]]:
    """The read-table rows of a batch's new NCs, in the shape `follow_import` inserts; their
    time is read back from the first stored event, so that it is the one the events hold to the
    microsecond."""
    from capa.readmodels.projection import raised_row, raised_rows

    first = raised_row(app.mapper, events[0][3])
    if first is None:
        return []
    return raised_rows(refs, batch, user, first[10], shared)


def _on_sqlite(app: Core) -> bool:
    return backend_of(app) == "sqlite"


def raised_events(app: Core, refs: Sequence[str],
                  fields: Mapping[str, Sequence[str | None]], user: str, *,
                  shared: Sequence[str] | None = None) -> list[EventRow]:
    """The stored Raised events of new NCs, built straight from validated rows, as rows of the
    events table: (record id, version, topic, state). `shared` is `raised_fields_json(fields)`
    when the caller already has it.

    The same events `Nonconformity.raise_new` would record (a test holds the two paths to the
    same decoded state), without creating an aggregate per row: for new records at version 1
    there is nothing to load, check or snapshot. Rows come from `validate_rows`, so every text
    is already trimmed and every vocabulary word already checked.
    """
    mapper = app.mapper
    topic, originator_topic = get_topic(Nonconformity.Raised), get_topic(Nonconformity)  # type: ignore[attr-defined]
    stamp = {"_type_": "datetime_iso", "_data_": dt.datetime.now(dt.UTC).isoformat()}
    stored = stored_id(app.recorder)
    if isinstance(mapper.transcoder, JSONTranscoder):
        # The JSON the transcoder writes for this state (keys in the event's order, compact,
        # UTF-8), assembled from escaped strings: the batch shares one timestamp and every
        # other value is text, so there is nothing for a general encoder to decide per row.
        q = encode_basestring
        head = (f'{{"timestamp":{json.dumps(stamp, separators=(",", ":"))},'
                f'"originator_topic":{q(originator_topic)},"actor":{q(user)},"ref":')
        tail = f',"reported_by":{q(user)}}}'
        members = raised_fields_json(fields) if shared is None else shared
        states = [f'{head}{q(ref)},{middle}{tail}'.encode()
                  for ref, middle in zip(refs, members, strict=True)]
    else:
        states = [mapper.transcoder.encode(
            {"timestamp": stamp, "originator_topic": originator_topic, "actor": user, "ref": ref,
             **dict(zip(_RAISED_VALUES, values, strict=True)), "reported_by": user})
            for ref, *values in zip(refs, *(fields[name] for name in _RAISED_VALUES),
                                    strict=True)]
    if mapper.compressor:
        states = [mapper.compressor.compress(state) for state in states]
    if mapper.cipher:
        states = [mapper.cipher.encrypt(state) for state in states]
    return [(stored(ref), 1, topic, state) for ref, state in zip(refs, states, strict=True)]


#: The fields of a Raised event's state between its ref and reporter, in the event's order.
_RAISED_VALUES = RAISED_FIELDS[1:-1]
