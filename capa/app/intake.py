"""Bulk NC intake from CSV (SPEC §6): map columns to NC fields, validate every row before anything
is written, then save in atomic batches that skip external references already in the store."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.persistence import IntegrityError

from capa.domain.errors import Conflict, InvalidInput
from capa.domain.nonconformity import Nonconformity
from capa.domain.values import Severity, Source

if TYPE_CHECKING:
    from capa.app.service import CapaApplication

NC_FIELDS = ("title", "description", "source", "severity", "product", "lot", "external_ref",
             "detected_on")
REQUIRED = ("title", "description", "source", "severity")
#: One atomic save per batch: a killed import loses at most the batch in flight, and a re-run
#: skips every external reference already saved.
BATCH_SIZE = 1000

#: Words regulators use for severity, mapped onto capa's three levels.
SEVERITY_SYNONYMS = {
    "class i": "critical", "class 1": "critical", "high": "critical", "serious": "critical",
    "class ii": "major", "class 2": "major", "medium": "major",
    "class iii": "minor", "class 3": "minor", "low": "minor",
}
#: Placeholders that mean "no value" in real exports.
_EMPTY = {"none", "null", "n/a", "na", "-", "--"}
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                 "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%d",
                 "%d.%m.%Y")


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

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported,
                "skipped_existing": self.skipped_existing,
                "skipped_duplicate": self.skipped_duplicate,
                "without_external_ref": self.without_external_ref, "dry_run": self.dry_run,
                "first_id": self.first_id, "last_id": self.last_id,
                "errors": [{"row": e.row, "column": e.column, "reason": e.reason}
                           for e in self.errors]}


class ImportRejected(InvalidInput):
    """At least one row is invalid: nothing was written. Carries the row-level report."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len({e.row for e in report.errors})} of {report.rows} rows are "
                         "invalid; nothing was imported")
        self.report = report


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a UTF-8 CSV file (a byte-order mark is ignored; cells may span lines).
    """
    source = Path(path)
    if not source.is_file():
        raise InvalidInput(f"no such file: {str(source)!r}")
    csv.field_size_limit(sys.maxsize)
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = [dict(row) for row in reader]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{source.name} is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    except csv.Error as exc:
        raise InvalidInput(f"{source.name} is not a readable CSV file: {exc}") from None
    if not header:
        raise InvalidInput(f"{source.name} has no header row")
    return header, rows


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
    columns: dict[str, list[str]] = {}
    for column, target in mapping.items():
        name = _normal(target)
        if name not in NC_FIELDS:
            raise InvalidInput(f"--map {column}={target}: {target!r} is not an NC field "
                               f"(fields: {', '.join(NC_FIELDS)})")
        if column not in header:
            match = [h for h in header if _normal(h) == _normal(column)]
            if not match:
                raise InvalidInput(f"--map {column}={target}: the file has no column "
                                   f"{column!r}")
            column = match[0]
        columns.setdefault(name, []).append(column)
    for name in constants:
        if _normal(name) not in NC_FIELDS:
            raise InvalidInput(f"--set {name}: not an NC field (fields: {', '.join(NC_FIELDS)})")
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


def clean(value: str | None, *, multiline: bool = False) -> str:
    """A cell without its placeholders and noise: `None` and `, ` mean empty, `40,915.00` is
    40915, and whitespace runs collapse (line breaks kept in multi-line fields)."""
    text = (value or "").strip()
    if text.lower() in _EMPTY or not text.strip(" ,;.\t\r\n"):
        return ""
    if _THOUSANDS.match(text):
        number = text.replace(",", "")
        return number[:-3] if number.endswith(".00") else number
    if multiline and "\n" in text:
        lines = [" ".join(line.split()) for line in text.splitlines()]
        return "\n".join(line for line in lines if line)
    return " ".join(text.split())


def parse_day(text: str) -> dt.date:
    if len(text) == 10 and text[4] == "-":
        try:
            return dt.date.fromisoformat(text)  # the common case, and far cheaper than strptime
        except ValueError:
            pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD, MM/DD/YYYY or M/D/YYYY H:MM:SS)")


def _choice(value: str, allowed: Iterable[str], synonyms: Mapping[str, str]) -> str | None:
    word = value.strip().lower()
    word = synonyms.get(word, word)
    word = re.sub(r"[\s_]+", "-", word)
    return word if word in allowed else None


def validate_rows(rows: Sequence[Mapping[str, str | None]], columns: Mapping[str, list[str]],
                  constants: Mapping[str, str], today: dt.date,
                  ) -> tuple[list[dict[str, str | None]], list[RowError]]:
    """Every row as NC fields, or the reasons it cannot be one (column named for each)."""
    sources = [s.value for s in Source]
    severities = [s.value for s in Severity]
    fixed = {_normal(k): v for k, v in constants.items()}
    valid: list[dict[str, str | None]] = []
    errors: list[RowError] = []
    for index, row in enumerate(rows, start=2):
        values: dict[str, str | None] = {}
        origin: dict[str, str] = {}
        for name in NC_FIELDS:
            multiline = name == "description"
            if name in columns:
                parts = [clean(row.get(c), multiline=multiline) for c in columns[name]]
                text = ("\n\n" if multiline else " - ").join(p for p in parts if p)
                origin[name] = "+".join(columns[name])
            else:
                text = ""
            if not text and name in fixed:
                text, origin[name] = clean(fixed[name], multiline=multiline), f"--set {name}"
            values[name] = text or None
        problems: list[RowError] = []
        for name in REQUIRED:
            if not values[name]:
                problems.append(RowError(index, origin.get(name, name), f"{name} is empty"))
        for name, allowed, synonyms in (("source", sources, {}),
                                        ("severity", severities, SEVERITY_SYNONYMS)):
            raw = values[name]
            if raw:
                word = _choice(raw, allowed, synonyms)
                if word is None:
                    problems.append(RowError(index, origin[name], f"{name} {raw!r} is not one "
                                             f"of: {', '.join(allowed)}"))
                values[name] = word
        if values["detected_on"]:
            try:
                day = parse_day(str(values["detected_on"]))
            except ValueError as exc:
                problems.append(RowError(index, origin["detected_on"], str(exc)))
            else:
                if day > today:
                    problems.append(RowError(index, origin["detected_on"],
                                             f"detected-on {day} is in the future"))
                values["detected_on"] = day.isoformat()
        else:
            values["detected_on"] = today.isoformat()
        if problems:
            errors.extend(problems)
        else:
            valid.append(values)
    return valid, errors


class Intake:
    """`import_ncs` of CapaApplication."""

    def import_ncs(
        self, rows: Sequence[Mapping[str, str | None]],
        mapping: Mapping[str, str], dry_run: bool = False, *,
        header: Sequence[str] | None = None, constants: Mapping[str, str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Raise one NC per valid row; refuse the whole file if any row is invalid.

        Idempotent on external_ref: rows whose reference is already in the store, or repeated
        earlier in the file, are skipped, so a re-run (even after an interrupted one) imports
        nothing twice.
        """
        from capa.app.readside import authorise

        app = cast("CapaApplication", self)
        user = authorise(app, "import")
        fixed = dict(constants or {})
        names = list(header) if header is not None else list(rows[0]) if rows else []
        columns = resolve_columns(names, mapping, fixed)
        today = dt.datetime.now(dt.UTC).date()
        valid, errors = validate_rows(rows, columns, fixed, today)
        report = ImportReport(rows=len(rows), dry_run=dry_run, errors=errors)
        if errors:
            raise ImportRejected(report)
        existing = app.read_models.external_refs()
        seen: set[str] = set()
        fresh: list[dict[str, str | None]] = []
        for values in valid:
            ref = values["external_ref"]
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
            fresh.append(values)
        if dry_run:
            report.imported = len(fresh)
            return report
        for start in range(0, len(fresh), BATCH_SIZE):
            batch = fresh[start:start + BATCH_SIZE]
            saved = _save_batch(app, batch, user)
            report.imported += len(saved)
            report.first_id = report.first_id or saved[0].ref
            report.last_id = saved[-1].ref
            if progress is not None:
                progress(len(batch))
        return report


def _save_batch(app: CapaApplication, batch: list[dict[str, str | None]],
                user: str) -> list[Nonconformity]:
    """One atomic save of a batch: its numbers are allocated once; if a concurrent writer took
    one of them, nothing of the batch was written and it is numbered again."""
    from capa.app.service import format_ref

    year = dt.datetime.now(dt.UTC).year
    for _ in range(20):
        first = app._next_number("NC", year)
        ncs = [Nonconformity.raise_new(ref=format_ref("NC", year, first + i),
                                       reported_by=user, **_fields(values))
               for i, values in enumerate(batch)]
        # New records at version 1 need no snapshot or cache, so their events go straight to
        # the event store: the same insert as Application.save without its per-object checks.
        events = [event for nc in ncs for event in nc.collect_events()]
        try:
            recordings = app.events.put(events)
        except IntegrityError:
            continue
        app.read_models.record_saved(ncs, recordings)
        return ncs
    raise Conflict("could not allocate record numbers for the import; the batches saved so far "
                   "stay, and a re-run skips them")


def _fields(values: Mapping[str, str | None]) -> dict[str, Any]:
    return {"title": values["title"] or "", "description": values["description"] or "",
            "source": values["source"] or "", "severity": values["severity"] or "",
            "product": values["product"], "lot": values["lot"],
            "external_ref": values["external_ref"], "detected_on": values["detected_on"] or ""}
