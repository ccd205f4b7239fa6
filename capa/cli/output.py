"""Rendering: one JSON document with --json, aligned plain text otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click


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
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        text = human(data)
        if text:
            click.echo(text)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
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
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error(as_json: bool, code: int, message: str, rule: str | None = None) -> None:
    if as_json:
        doc = {"error": {"code": code, "rule": rule, "message": message}}
        click.echo(json.dumps(doc, ensure_ascii=False), err=True)
    else:
        click.echo(f"capa: {message}", err=True)


def written(data: dict[str, Any]) -> str:
    extra = ", ".join(f"{k} {_join(v)}" for k, v in data.items()
                      if k not in ("id", "status", "version"))
    tail = f"; {extra}" if extra else ""
    return f"{data['id']}: {data['status']} (version {data['version']}){tail}"


def _join(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


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
                out.append(f"{pad}{key}: {value}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                out.append(f"{pad}-")
                _outline(item, depth + 1, out)
            else:
                out.append(f"{pad}- {item}")


