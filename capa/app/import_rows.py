"""The rows of an import (SPEC §6, §10): reading a CSV or workbook, mapping its columns onto NC
fields, cleaning and validating every cell before anything is written, and the report of what an
import did. Shared by the plain import (capa.app.intake) and the legacy migration
(capa.app.migration)."""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from capa.domain.dates import date_format
from capa.domain.dates import parse_day as _parse_day
from capa.domain.errors import InvalidInput
from capa.domain.nonconformity import NC_FIELD, NC_FIELDS, NC_LINE_FIELDS, NC_REQUIRED, NC_SCHEMA
from capa.domain.values import CONTROL, has_visible

#: The legacy fields a row may carry besides the NC's own.
MIGRATION_FIELDS = ("status", "closed_on", "root_cause", "ca_action", "ca_owner",
                    "ca_opened_on", "ca_closed_on", "effectiveness")
REQUIRED = NC_REQUIRED
_LINE_FIELDS = NC_LINE_FIELDS

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


def normal_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def resolve_columns(header: Sequence[str], mapping: Mapping[str, str],
                    constants: Mapping[str, str]) -> dict[str, list[str]]:
    """NC field -> the columns that feed it: explicit `--map` first, then same-named columns."""

    known = (*NC_FIELDS, *MIGRATION_FIELDS)
    columns: dict[str, list[str]] = {}
    for column, target in mapping.items():
        name = normal_name(target)
        if name not in known:
            raise InvalidInput(f"--map {column}={target}: {target!r} is not an NC field "
                               f"(fields: {', '.join(known)})")
        if column not in header:
            match = [h for h in header if normal_name(h) == normal_name(column)]
            if not match:
                raise InvalidInput(f"--map {column}={target}: the file has no column "
                                   f"{column!r}")
            column = match[0]
        columns.setdefault(name, []).append(column)
    for name in constants:
        if normal_name(name) not in known:
            raise InvalidInput(f"--set {name}: not an NC field (fields: {', '.join(known)})")
    for column in header:
        name = normal_name(column)
        if name in NC_FIELDS and name not in columns and column not in mapping:
            columns[name] = [column]
    missing = [f for f in REQUIRED if f not in columns and f not in
               {normal_name(k) for k in constants}]
    if missing:
        raise InvalidInput(f"no column gives {', '.join(missing)}: name a column after the field "
                           "or use --map COLUMN=FIELD (or --set FIELD=VALUE)")
    return columns


def check_constants(constants: Mapping[str, str], today: dt.date,
                    date_format: str | None = None) -> None:
    """Every `--set` value must be valid in itself, whether or not a row ends up using it: the
    constants are validated as the only values of one otherwise empty row."""
    given = {normal_name(name): name for name in constants}
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
    cells_of = column_reader(rows, header)
    fixed = {normal_name(k): v for k, v in constants.items()}
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


def column_reader(rows: Sequence[Row], header: Sequence[str] | None,
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
