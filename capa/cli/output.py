"""Rendering: one JSON document with --json, aligned plain text otherwise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import click

#: Characters a terminal may act on instead of showing: C0 controls but the newline (ESC starts
#: CSI and OSC sequences, CR and backspace overwrite what was printed, BEL rings), DEL, C1
#: controls, and the bidirectional marks, embeddings, overrides and isolates that make text
#: read in another order than it is stored (Trojan Source, CVE-2021-42574).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069]")
#: What json.dumps leaves unescaped of those (it escapes C0 itself), plus the line and paragraph
#: separators; in a JSON document they only occur inside strings, where \uXXXX means the same.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                          "\u2028\u2029]")


def terminal_safe(text: str) -> str:
    r"""`text` with every character a terminal could act on shown as its escape (`\x1b`,
    `\u202e`), so that user text can neither move the cursor, rewrite earlier lines, change
    the window title nor reorder what is shown; newlines stay."""
    return _UNSAFE.sub(_escape, text)


def json_text(data: Any, *, indent: int | None = None) -> str:
    r"""One JSON document whose DEL, C1 and bidirectional characters are \u-escaped: the same
    document to a JSON reader, inert on a terminal."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                            json.dumps(data, ensure_ascii=False, indent=indent))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: Cells a spreadsheet would read as a formula (=, +, -, @) or that some read as one after
#: dropping a leading tab or carriage return (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading `'`.
    Numbers capa itself writes (versions, iterations) are not text and stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_data(value: Any) -> Any:
    """View models, write results and lists of them as plain JSON-ready data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def emit(as_json: bool, value: Any, human: Callable[[Any], str]) -> None:
    data = to_data(value)
    if as_json:
        click.echo(json_text(data, indent=2))
    else:
        text = human(data)
        if text:
            click.echo(terminal_safe(text))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str],
          whole: Sequence[str] = ()) -> str:
    """Aligned columns; long cells are shortened, except in the `whole` columns (a SHA-256 that
    a person copies into the next command)."""
    cells = [[terminal_safe(str(v)) if h in whole and v is not None else _cell(v)
              for v, h in zip(row, headers, strict=True)] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    # Escaped before measuring, so that a hostile cell keeps the columns aligned.
    text = terminal_safe(_plain(value))
    return text if len(text) <= 60 else text[:57] + "..."


def error(as_json: bool, code: int, message: str, rule: str | None = None) -> None:
    if as_json:
        doc = {"error": {"code": code, "rule": rule, "message": message}}
        click.echo(json_text(doc), err=True)
    else:
        click.echo(f"capa: {terminal_safe(message)}", err=True)


def written(data: dict[str, Any]) -> str:
    extra = ", ".join(f"{k} {_join(v)}" for k, v in data.items()
                      if k not in ("id", "status", "version"))
    tail = f"; {extra}" if extra else ""
    return f"{data['id']}: {data['status']} (version {data['version']}){tail}"


def _join(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(_plain, value)) or "none"
    return _plain(value)


def record_text(data: dict[str, Any]) -> str:
    """A record as an indented outline, nested entries one per line."""
    out: list[str] = []
    _outline(data, 0, out)
    return "\n".join(out)


def _outline(data: Any, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(data, dict):
        for key, value in data.items():
            if value in (None, [], {}):
                continue
            if isinstance(value, dict | list):
                out.append(f"{pad}{key}:")
                _outline(value, depth + 1, out)
            else:
                out.append(f"{pad}{key}: {_plain(value)}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                out.append(f"{pad}-")
                _outline(item, depth + 1, out)
            else:
                out.append(f"{pad}- {_plain(item)}")


def _plain(value: Any) -> str:
    """A value as a person reads it: yes/no, not Python's True/False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


