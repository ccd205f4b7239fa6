"""`capa import` and `capa export`: argument handling and output."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.outfile import atomic_out, check_out
from capa.cli.output import csv_cell, emit, json_text


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Feed an NC field from a column (repeatable; several columns may feed one "
                   "field). Columns named like a field map by themselves.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="A value for a field that no column gives, or where the column is empty.")
@click.option("--date-format", metavar="LAYOUT",
              help="How the file writes dates that are not YYYY-MM-DD: DD/MM/YYYY, MM/DD/YYYY, "
                   "DD.MM.YYYY, YYYY/MM/DD, DD-MM-YYYY, YYYYMMDD... (YYYY-MM-DD is always "
                   "read; without this option any other date is refused, never guessed).")
@click.option("--delimiter", metavar="CHAR",
              help="CSV delimiter (default: sniffed among comma, semicolon and tab; 'tab' for "
                   "a tab).")
@click.option("--encoding", metavar="NAME",
              help="CSV text encoding, e.g. cp1252 or latin-1 (default: UTF-8, with or "
                   "without a byte-order mark).")
@click.option("--sheet", metavar="NAME", help="The .xlsx sheet to read (default: the first).")
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@click.option("--source-system", default="spreadsheet", show_default=True, metavar="NAME",
              help="The legacy system migrated records name as their origin.")
@json_option
@pass_session
def import_(session: Session, file: Path, maps: tuple[str, ...], sets: tuple[str, ...],
            date_format: str | None, delimiter: str | None, encoding: str | None,
            sheet: str | None, dry_run: bool, source_system: str) -> None:
    """Raise NCs in bulk from a CSV file or an .xlsx workbook with a header row.

    Every row is validated before anything is written; if any row is invalid the row-level
    report is printed and nothing is imported (exit 2). Rows whose external_ref is already in
    the store are skipped, so running the same file again imports nothing twice. NCs are saved
    in batches (20,000 on SQLite, 1,000 on PostgreSQL), each in one transaction: a run stopped
    midway keeps the batches it saved, and running it again completes it. Row numbers count the
    header as row 1. In a workbook, cells that are dates read as dates and whole numbers as
    integers. Columns that feed no field are named in a warning.

    A file with legacy columns (status: open, closed or cancelled; closed_on; CA columns
    root_cause, ca_action, ca_owner, ca_opened_on, ca_closed_on, effectiveness) migrates its
    history: every row needs a status and becomes a record marked migrated, in its legacy state
    with its legacy dates; running the file again migrates nothing twice.

    \b
    Example:
      capa import complaints.csv --map "Complaint No=external_ref" --map Summary=title \\
          --map Details=description --set source=customer-complaint --set severity=major
      capa import alerts.xlsx --sheet 2026 --date-format DD/MM/YYYY
      capa import register.csv --map State=status --source-system "QMS 2019"
    """
    from capa.app.import_rows import (
        ImportRejected,
        bulk_work,
        check_date_format,
        parse_assignments,
        read_csv,
    )
    from capa.app.migration import LegacySource
    from capa.app.spreadsheet import delimiter_option

    mapping = dict(parse_assignments(maps, "--map"))
    constants = dict(parse_assignments(sets, "--set"))
    check_date_format(date_format)
    try:
        with bulk_work():
            header, rows = read_csv(file, delimiter=delimiter_option(delimiter),
                                    encoding=encoding, sheet=sheet)
            source = LegacySource.of_file(file, source_system)
            app = session.app()
            show_bar = sys.stderr.isatty() and not dry_run and len(rows) > 1000
            if show_bar:
                with click.progressbar(length=len(rows), label="importing",
                                       file=sys.stderr) as bar:
                    report = app.intake.import_ncs(rows, mapping, dry_run, header=header,
                                                   constants=constants, progress=bar.update,
                                                   date_format=date_format, source=source)
            else:
                report = app.intake.import_ncs(rows, mapping, dry_run, header=header,
                                               constants=constants, date_format=date_format,
                                               source=source)
    except ImportRejected as rejected:
        emit(session.json, rejected.report, _errors_text)
        raise
    emit(session.json, report, _report_text)


def _errors_text(data: dict[str, Any]) -> str:
    """One line per refused cell with its reason whole: a reason such as the two readings of
    an ambiguous date is what tells the user what to do, and a table column would cut it."""
    from capa.domain.values import CONTROL

    shown = data["errors"][:50]
    lines = [CONTROL.sub(lambda m: repr(m.group())[1:-1],
                         f"row {e['row']}, {e['column']}: {e['reason']}") for e in shown]
    more = len(data["errors"]) - len(shown)
    return "\n".join(lines) + (f"\n... and {more} more" if more > 0 else "")


def _report_text(d: dict[str, Any]) -> str:
    verb = "would import" if d["dry_run"] else "imported"
    span = f" ({d['first_id']} .. {d['last_id']})" if d["first_id"] else ""
    text = (f"{d['rows']} rows: {verb} {d['imported']}{span}; skipped {d['skipped_existing']} "
            f"already in the store and {d['skipped_duplicate']} repeated in the file")
    if d["migrated"] or d["already_migrated"]:
        text += (f"\n{d['migrated']} {'would be' if d['dry_run'] else 'were'} migrated with "
                 f"their legacy status and dates; {d['already_migrated']} already migrated")
        if d["skipped_existing"]:
            text += (f"\nnote: {d['skipped_existing']} rows match NCs already in the store that "
                     "were not migrated; they are left as they are")
    if d["ignored_columns"]:
        text += ("\nwarning: ignored columns (no field takes them; use --map COLUMN=FIELD): "
                 + ", ".join(d["ignored_columns"]))
    if d["without_external_ref"] and not d["migrated"] and not d["already_migrated"]:
        # Without a reference a row cannot be recognised next time: say so before it bites.
        text += (f"\nnote: {d['without_external_ref']} rows have no external_ref; running the "
                 "file again would import them again")
    return text


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl: every event; csv: current records.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output).")
@click.option("--bom", is_flag=True,
              help="csv: start with a UTF-8 byte order mark, so that Excel shows accents right.")
@json_option
@pass_session
def export(session: Session, fmt: str, out: Path | None, bom: bool) -> None:
    """Export every event as JSON lines, or the current NCs and CAs as CSV.

    With --json and --out, prints what was written: {"format", "out", "bytes"} and the number
    of "events" (jsonl) or "rows" (csv). With --json and no --out, prints the data as one JSON
    document: an array of the events (jsonl) or of the rows as objects (csv).

    In csv, a text cell that starts with = + - @, a tab or a carriage return starts with a '
    instead, so that no spreadsheet runs it as a formula; numbers stay numbers.

    \b
    Example:
      capa export --format jsonl --out events.jsonl
      capa export --format csv --bom --out records.csv
      capa --json export --format csv
    """
    if bom and fmt != "csv":
        raise click.UsageError("--bom is for --format csv")
    if out is not None:
        check_out(out)
    app = session.app()

    if out is None and session.json:
        intake = app.intake
        data = list(intake.export_events()) if fmt == "jsonl" else intake.export_records()
        emit(True, data, str)
        return

    def write(sink: _Utf8Sink) -> int:
        if fmt == "jsonl":
            count = 0
            for event in app.intake.export_events():
                sink.write(json_text(event) + "\n")
                count += 1
            return count
        rows = app.intake.export_records()
        columns = list(rows[0]) if rows else ["id", "kind", "status", "title"]
        if bom:
            sink.write("\ufeff")
        writer = csv.DictWriter(sink, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
        return len(rows)

    if out is None:
        buffer = io.BytesIO()
        write(_Utf8Sink(buffer))
        click.echo(buffer.getvalue().decode("utf-8"), nl=False)
        return
    with atomic_out(out) as stream:
        sink = _Utf8Sink(stream)
        count = write(sink)
    if session.json:
        emit(True, {"format": fmt, "out": str(out), "bytes": sink.bytes,
                    "events" if fmt == "jsonl" else "rows": count}, str)
    else:
        click.echo(f"written {out}", err=True)


class _Utf8Sink:
    """A text sink for json and csv that writes UTF-8 to a binary stream and counts bytes."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.bytes = 0

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.stream.write(data)
        self.bytes += len(data)
        return len(text)
