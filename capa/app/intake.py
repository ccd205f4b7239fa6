"""Bulk NC intake from CSV (SPEC §6): map columns to NC fields, validate every row before anything
is written, then save in atomic batches that skip external references already in the store; and
the exports (capa.app.export).

Size: the column mapping, row validation and batch insert of one import belong together."""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from json.encoder import encode_basestring
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.persistence import IntegrityError, JSONTranscoder
from eventsourcing.utils import get_topic

from capa.adapters.eventlog import (
    EventRow,
    backend_of,
    bulk_insert,
    bulk_insert_joins_transaction,
    stored_id,
)
from capa.app import export
from capa.app.core import Core
from capa.app.operations import operation
from capa.domain.dates import date_format
from capa.domain.dates import parse_day as _parse_day
from capa.domain.errors import Conflict, InvalidInput
from capa.domain.nonconformity import (
    NC_FIELD,
    NC_FIELDS,
    NC_LINE_FIELDS,
    NC_REQUIRED,
    NC_SCHEMA,
    RAISED_FIELDS,
    Nonconformity,
    raised_fields_json,
)
from capa.domain.refs import RecordRef
from capa.domain.values import CONTROL, has_visible

if TYPE_CHECKING:
    from capa.app.migration import LegacySource

#: The NC's fields, those that must be given, and those held to one line: the domain's schema.
REQUIRED = NC_REQUIRED
_LINE_FIELDS = NC_LINE_FIELDS
#: One atomic save per batch: a killed import loses at most the batch in flight, and a re-run
#: skips every external reference already saved.
BATCH_SIZE = 20_000
#: On PostgreSQL, smaller batches: they keep to the recorder's pipelined path (see
#: capa.adapters.pgrecorder) and hold the table lock other writers wait on only briefly.
SERVER_BATCH_SIZE = 1000

#: Words regulators use for severity, mapped onto capa's three levels.
SEVERITY_SYNONYMS = {
    "class i": "critical", "class 1": "critical", "high": "critical", "serious": "critical",
    "class ii": "major", "class 2": "major", "medium": "major",
    "class iii": "minor", "class 3": "minor", "low": "minor",
}
_SYNONYMS = {"severity": SEVERITY_SYNONYMS}
#: Placeholders that mean "no value" in real exports.
_EMPTY = {"none", "null", "n/a", "na", "-", "--"}
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


@dataclass
class ImportReport:
    """What an import did or, in a dry run, would do. Row numbers count the header as row 1."""

    rows: int = 0
    imported: int = 0
    skipped_existing: int = 0
    skipped_duplicate: int = 0
    without_external_ref: int = 0
    dry_run: bool = False
    first_id: str | None = None
    last_id: str | None = None
    errors: list[RowError] = field(default_factory=list)
    #: Rows that became migrated records (SPEC §10), and rows an earlier run already migrated.
    migrated: int = 0
    already_migrated: int = 0
    #: Columns of the file that feed no field: reported, never silently dropped.
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported,
                "skipped_existing": self.skipped_existing,
                "skipped_duplicate": self.skipped_duplicate,
                "without_external_ref": self.without_external_ref, "dry_run": self.dry_run,
                "first_id": self.first_id, "last_id": self.last_id,
                "errors": [{"row": e.row, "column": e.column, "reason": e.reason}
                           for e in self.errors],
                "migrated": self.migrated, "already_migrated": self.already_migrated,
                "ignored_columns": list(self.ignored_columns)}


class ImportRejected(InvalidInput):
    """At least one row is invalid: nothing was written. Carries the row-level report."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len({e.row for e in report.errors})} of {report.rows} rows are "
                         "invalid; nothing was imported")
        self.report = report


#: A row of input: cells by column name, or cells in the order of the header.
Row = Mapping[str, str | None] | Sequence[str | None]


@contextmanager
def bulk_work() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is read and imported: the rows make
    hundreds of thousands of containers that it would otherwise traverse again and again, and
    nothing here makes cycles (reference counting still frees everything as it goes)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_csv(path: str | Path, *, delimiter: str | None = None, encoding: str | None = None,
             sheet: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file or an .xlsx workbook (capa.app.spreadsheet.read_table):
    rows are lists of cells in header order, cells may span lines."""
    from capa.app.spreadsheet import read_table

    return read_table(path, delimiter=delimiter, encoding=encoding, sheet=sheet)


def parse_assignments(pairs: Sequence[str], what: str) -> list[tuple[str, str]]:
    """`LEFT=RIGHT` option values, split at the last `=` (column names may contain one)."""
    out: list[tuple[str, str]] = []
    for pair in pairs:
        left, sep, right = pair.rpartition("=") if what == "--map" else pair.partition("=")
        if not sep or not left.strip() or (what == "--map" and not right.strip()):
            form = "COLUMN=FIELD" if what == "--map" else "FIELD=VALUE"
            raise InvalidInput(f"{what} takes {form} (got {pair!r})")
        out.append((left.strip(), right.strip()))
    return out


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def resolve_columns(header: Sequence[str], mapping: Mapping[str, str],
                    constants: Mapping[str, str]) -> dict[str, list[str]]:
    """NC field -> the columns that feed it: explicit `--map` first, then same-named columns."""
    from capa.app.migration import MIGRATION_FIELDS

    known = (*NC_FIELDS, *MIGRATION_FIELDS)
    columns: dict[str, list[str]] = {}
    for column, target in mapping.items():
        name = _normal(target)
        if name not in known:
            raise InvalidInput(f"--map {column}={target}: {target!r} is not an NC field "
                               f"(fields: {', '.join(known)})")
        if column not in header:
            match = [h for h in header if _normal(h) == _normal(column)]
            if not match:
                raise InvalidInput(f"--map {column}={target}: the file has no column "
                                   f"{column!r}")
            column = match[0]
        columns.setdefault(name, []).append(column)
    for name in constants:
        if _normal(name) not in known:
            raise InvalidInput(f"--set {name}: not an NC field (fields: {', '.join(known)})")
    for column in header:
        name = _normal(column)
        if name in NC_FIELDS and name not in columns and column not in mapping:
            columns[name] = [column]
    missing = [f for f in REQUIRED if f not in columns and f not in
               {_normal(k) for k in constants}]
    if missing:
        raise InvalidInput(f"no column gives {', '.join(missing)}: name a column after the field "
                           "or use --map COLUMN=FIELD (or --set FIELD=VALUE)")
    return columns


def check_constants(constants: Mapping[str, str], today: dt.date,
                    date_format: str | None = None) -> None:
    """Every `--set` value must be valid in itself, whether or not a row ends up using it: the
    constants are validated as the only values of one otherwise empty row."""
    given = {_normal(name): name for name in constants}
    _, errors = validate_columns([{}], {}, constants, today, date_format=date_format)
    for error in errors:
        if error.column.startswith("--set "):
            name = given[error.column.removeprefix("--set ")]
            raise InvalidInput(f"--set {name}={constants[name]!r}: {error.reason}")


def clean(value: str | None, *, multiline: bool = False) -> str:
    """A cell without its placeholders and noise: `None` and `, ` mean empty, `40,915.00` is
    40915, and whitespace runs collapse (line breaks kept in multi-line fields)."""
    text = (value or "").strip()
    if (not text or (len(text) <= 4 and text.lower() in _EMPTY)
            or not text.strip(" ,;.\t\r\n") or not has_visible(text)):
        return ""
    if "," in text and _THOUSANDS.match(text):
        number = text.replace(",", "")
        return number[:-3] if number.endswith(".00") else number
    if multiline and "\n" in text:
        lines = [" ".join(line.split()) for line in text.splitlines()]
        return "\n".join(line for line in lines if line)
    return " ".join(text.split())


def check_date_format(layout: str | None) -> None:
    """Refuse a --date-format capa does not read before any row is looked at."""
    if layout is not None:
        try:
            date_format(layout)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None


def parse_day(text: str, layout: str | None = None) -> dt.date:
    """A date cell: ISO always, another layout only as named by --date-format (the parser of
    every date option, capa.domain.dates)."""
    return _parse_day(text, layout)


def _choice(value: str, allowed: Iterable[str], synonyms: Mapping[str, str]) -> str | None:
    word = value.strip().lower()
    word = synonyms.get(word, word)
    word = re.sub(r"[\s_]+", "-", word)
    return word if word in allowed else None


#: NC field -> its value in each row, rows in file order.
Columns = dict[str, list[str | None]]


def validate_rows(rows: Sequence[Row], columns: Mapping[str, list[str]],
                  constants: Mapping[str, str], today: dt.date,
                  header: Sequence[str] | None = None, *, date_format: str | None = None,
                  ) -> tuple[list[dict[str, str | None]], list[RowError]]:
    """Every valid row as NC fields, and the reasons the others cannot be NCs."""
    fields, errors = validate_columns(rows, columns, constants, today, header,
                                      date_format=date_format)
    values = zip(*(fields[name] for name in NC_FIELDS), strict=True)
    return [dict(zip(NC_FIELDS, row, strict=True)) for row in values], errors


def validate_columns(rows: Sequence[Row], columns: Mapping[str, list[str]],
                     constants: Mapping[str, str], today: dt.date,
                     header: Sequence[str] | None = None, *, date_format: str | None = None,
                     ) -> tuple[Columns, list[RowError]]:
    """The NC fields of every valid row, a column each, or the reasons a row cannot be an NC
    (column named for each).

    Works a column at a time and cleans, parses and checks each distinct cell value once:
    sources, severities, dates, products and lots repeat across a file, and a large import
    spends most of its time here otherwise.
    """
    count = len(rows)
    cells_of = _column_reader(rows, header)
    fixed = {_normal(k): v for k, v in constants.items()}
    fields: dict[str, list[str]] = {}
    origin: dict[str, str] = {}
    from_constant: dict[str, list[bool]] = {}
    for name in NC_FIELDS:
        multiline = name == "description"
        texts = [""] * count
        if name in columns:
            origin[name] = "+".join(columns[name])
            cells = [_cleaned(cells_of(c), multiline) for c in columns[name]]
            if len(cells) == 1:
                texts = cells[0]
            else:
                glue = "\n\n" if multiline else " - "
                texts = [glue.join(p for p in parts if p) for parts in zip(*cells, strict=True)]
        if name in fixed:
            constant = clean(fixed[name], multiline=multiline)
            from_constant[name] = [not t for t in texts]
            texts = [t or constant for t in texts]
        fields[name] = texts

    def where(name: str, index: int) -> str:
        if name in from_constant and from_constant[name][index]:
            return f"--set {name}"
        return origin.get(name, name)

    problems: dict[int, list[RowError]] = {}

    def refuse(index: int, name: str, reason: str) -> None:
        problems.setdefault(index, []).append(RowError(index + 2, where(name, index), reason))

    for name in REQUIRED:
        for index, text in enumerate(fields[name]):
            if not text:
                refuse(index, name, f"{name} is empty")
    # The limits the domain holds single records to (capa.domain.values), checked a column at
    # a time: the slow per-cell pass runs only for a column that breaks one.
    for name in NC_FIELDS:
        texts = fields[name]
        limit = NC_FIELD[name].limit
        if texts and max(map(len, texts)) > limit:
            for index, text in enumerate(texts):
                if len(text) > limit:
                    refuse(index, name, f"{name} is {len(text):,} characters long; at most "
                                        f"{limit:,}")
        if name in _LINE_FIELDS and CONTROL.search("".join(texts)):
            for index, text in enumerate(texts):
                if CONTROL.search(text):
                    refuse(index, name, f"{name} must be one line, without tabs or control "
                                        "characters")
    for spec in NC_SCHEMA:
        if spec.vocabulary is None:
            continue
        name, synonyms = spec.name, _SYNONYMS.get(spec.name, {})
        allowed = [member.value for member in spec.vocabulary]
        words = {text: _choice(text, allowed, synonyms) for text in set(fields[name]) if text}
        texts = fields[name]
        for index, text in enumerate(texts):
            if text:
                word = words[text]
                if word is None:
                    refuse(index, name, f"{name} {text!r} is not one of: {', '.join(allowed)}")
                    continue
                texts[index] = word
    days: dict[str, str | ValueError] = {}
    for text in set(fields["detected_on"]):
        if not text:
            days[text] = today.isoformat()
            continue
        try:
            day = parse_day(text, date_format)
        except ValueError as exc:
            days[text] = exc
        else:
            days[text] = (ValueError(f"detected-on {day} is in the future") if day > today
                          else day.isoformat())
    texts = fields["detected_on"]
    for index, text in enumerate(texts):
        day_or_error = days[text]
        if isinstance(day_or_error, ValueError):
            refuse(index, "detected_on", str(day_or_error))
        else:
            texts[index] = day_or_error
    errors = [error for index in sorted(problems) for error in problems[index]]
    valid: Columns = {}
    for name in NC_FIELDS:
        texts = fields[name]
        if problems:
            texts = [text for index, text in enumerate(texts) if index not in problems]
        valid[name] = [text or None for text in texts]
    return valid, errors


def _column_reader(rows: Sequence[Row], header: Sequence[str] | None,
                   ) -> Callable[[str], Sequence[str | None]]:
    """A function giving one column's cells, for rows keyed by column name or in header order
    (transposed once: a large file is read a column at a time)."""
    if not rows or isinstance(rows[0], Mapping):
        keyed = cast("Sequence[Mapping[str, str | None]]", rows)
        return lambda column: [row.get(column) for row in keyed]
    if header is None:
        raise ValueError("rows given as lists need the header")
    width = len(header)
    listed = cast("Sequence[Sequence[str | None]]", rows)
    if any(len(row) < width for row in listed):
        listed = [[*row, *[None] * (width - len(row))] for row in listed]
    index = {name: i for i, name in enumerate(header)}  # a repeated name: the last wins
    return lambda column: list(map(itemgetter(index[column]), listed))


def _cleaned(cells: Sequence[str | None], multiline: bool) -> list[str]:
    """`clean` of every cell, computed once per distinct value where values repeat (a column
    of unique values, such as references, is cheaper cleaned cell by cell)."""
    distinct = set(cells)
    if len(distinct) > len(cells) // 2:
        return [clean(cell, multiline=multiline) for cell in cells]
    texts = {cell: clean(cell, multiline=multiline) for cell in distinct}
    return list(map(texts.__getitem__, cells))


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
        source: LegacySource | None = None,
    ) -> ImportReport:
        """Raise one NC per valid row; refuse the whole file if any row is invalid.

        Idempotent on external_ref: rows whose reference is already in the store, or repeated
        earlier in the file, are skipped, so a re-run (even after an interrupted one) imports
        nothing twice. Dates are ISO unless `date_format` names their layout (DD/MM/YYYY…).
        Rows that carry a legacy status, closing date or CA columns become migrated records
        (capa.app.migration), named after `source`.
        """
        from capa.app import migration

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
        existing = app.read_models.external_refs(r for r in valid["external_ref"] if r)
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
