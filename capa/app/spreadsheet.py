"""Reading the files people export from other systems (SPEC §10): CSV in whatever delimiter,
encoding and line ending a spreadsheet program wrote, and Excel `.xlsx` workbooks. The result is
always a header and rows of text cells, so that everything after reading is the same."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from capa.domain.errors import InvalidInput

#: The delimiters a CSV file is sniffed among, in the order that wins a tie of equal counts
#: never (a tie is refused): comma, semicolon (Excel in most of Europe), tab.
DELIMITERS = (",", ";", "\t")
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_ZIP = b"PK\x03\x04"
#: Excel 97-2003 workbooks, and password-protected .xlsx files, are OLE compound files.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OTHER_SHEETS = {".xls": "an Excel 97-2003 workbook", ".ods": "an OpenDocument spreadsheet",
                 ".numbers": "a Numbers spreadsheet", ".xlsb": "a binary Excel workbook"}

Table = tuple[list[str], list[list[str]]]
_SEP_LINE = re.compile(r"sep=([^\r\n])\r?\n")


def delimiter_option(value: str | None) -> str | None:
    """`--delimiter` as one character: `,` `;` `|`, or `tab` / `\\t` for a tab."""
    if value is None:
        return None
    if value.lower() in ("tab", "\\t"):
        return "\t"
    if len(value) != 1 or value in "\"\r\n" or value.isalnum():
        raise InvalidInput(f"--delimiter takes one character such as ',' ';' '|' or the word "
                           f"tab (got {value!r})")
    return value


def read_table(path: str | Path, *, delimiter: str | None = None,
               encoding: str | None = None, sheet: str | None = None) -> Table:
    """Header and rows of a CSV file or an `.xlsx` workbook's sheet, every cell as text.

    Rows are lists of cells in header order (a short row's missing cells are empty where
    they are read; cells beyond the header are ignored); empty rows are dropped.
    """
    source = Path(path)
    if not source.is_file():
        raise InvalidInput(f"no such file: {str(source)!r}")
    data = source.read_bytes()
    kind = _OTHER_SHEETS.get(source.suffix.lower())
    if data.startswith(_OLE):
        kind = kind or "an Excel 97-2003 workbook or a password-protected one"
    if kind is not None:
        raise InvalidInput(f"{source.name} is {kind}: save it as .xlsx (without a password) or "
                           "as CSV UTF-8 and import that")
    if data.startswith(_ZIP) or source.suffix.lower() in (".xlsx", ".xlsm"):
        if delimiter is not None or encoding is not None:
            raise InvalidInput(f"{source.name} is a workbook: --delimiter and --encoding apply "
                               "to CSV files only")
        return read_xlsx(source, data, sheet)
    if sheet is not None:
        raise InvalidInput(f"{source.name} is not an .xlsx workbook: --sheet applies to "
                           "workbooks only")
    return read_csv_text(source.name, decode(source.name, data, encoding), delimiter)


def decode(name: str, data: bytes, encoding: str | None) -> str:
    """The text of a CSV file: UTF-8 (a byte-order mark ignored) unless `--encoding` says
    otherwise; UTF-16 is recognised by its byte-order mark ("Unicode text" exports)."""
    if encoding is None and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    codec = "utf-8-sig"
    if encoding is not None:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise InvalidInput(f"--encoding {encoding!r} is not an encoding Python knows; try "
                               "utf-8, cp1252, latin-1 or utf-16") from None
        codec = "utf-8-sig" if codec == "utf-8" else codec
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        if encoding is None:
            raise InvalidInput(f"{name} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                               f"{exc.start}): save it as CSV UTF-8 or pass --encoding cp1252 "
                               "(or the encoding it was saved in)") from None
        raise InvalidInput(f"{name} is not {encoding} text (byte 0x{data[exc.start]:02x} at "
                           f"offset {exc.start}): pass the --encoding it was saved in") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_csv_text(name: str, text: str, delimiter: str | None) -> Table:
    csv.field_size_limit(sys.maxsize)
    hint = _SEP_LINE.match(text)
    if hint is not None:
        # Excel's `sep=;` first line names the delimiter and is not the header.
        text = text[hint.end():]
        delimiter = delimiter or hint.group(1)
    chosen = delimiter or sniff(name, text)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=chosen)
        header = next(reader, [])
        rows = [row for row in reader if row and any(row)]
    except csv.Error as exc:
        raise InvalidInput(f"{name} is not a readable CSV file: {exc}") from None
    if not header or not any(cell.strip() for cell in header):
        raise InvalidInput(f"{name} has no header row")
    return header, rows


def sniff(name: str, text: str) -> str:
    """The delimiter that splits the header row into the most columns, among comma, semicolon
    and tab; a tie is refused rather than guessed."""
    sample = text[:65_536]
    counts = {}
    for candidate in DELIMITERS:
        try:
            first = next(csv.reader(io.StringIO(sample, newline=""), delimiter=candidate), [])
        except csv.Error:
            first = []
        counts[candidate] = len(first)
    best = max(counts.values())
    winners = [d for d, n in counts.items() if n == best]
    if best <= 1:
        return ","  # one column: any delimiter reads it
    if len(winners) > 1:
        names = " and ".join(_NAMES[d] for d in winners)
        raise InvalidInput(f"{name}: the header splits into {best} columns by {names} alike; "
                           "pass --delimiter")
    return winners[0]


def read_xlsx(source: Path, data: bytes, sheet: str | None) -> Table:
    """A workbook's sheet (the first unless named): cells that are dates become ISO dates, whole
    numbers integers, formulas their last computed values."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"{source.name} is not a readable .xlsx workbook ({exc}): open it "
                           "and save it again as .xlsx or CSV UTF-8") from None
    try:
        names = list(book.sheetnames)
        if sheet is None:
            if not names:
                raise InvalidInput(f"{source.name} has no sheet")
            sheet = names[0]
        elif sheet not in names:
            raise InvalidInput(f"{source.name} has no sheet {sheet!r}; its sheets: "
                               f"{', '.join(map(repr, names))} (pass one with --sheet)")
        rows = [[_cell(v) for v in row]
                for row in book[sheet].iter_rows(values_only=True)]
    finally:
        book.close()
    rows = [row for row in rows if any(row)]
    if not rows:
        raise InvalidInput(f"{source.name}: sheet {sheet!r} has no header row")
    header = _trimmed(rows[0])
    width = len(header)
    return header, [row[:width] for row in rows[1:]]


def _trimmed(cells: Iterable[str]) -> list[str]:
    """A header without the empty cells a workbook keeps after its last column."""
    header = list(cells)
    while header and not header[-1]:
        header.pop()
    return header


def _cell(value: Any) -> str:
    """A workbook cell as the text a CSV export of it would hold, dates in ISO."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
