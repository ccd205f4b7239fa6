"""`capa evidence list` and `capa evidence get`: the files kept with a record, back out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.outfile import check_out, write_out
from capa.cli.output import emit, table


@click.group()
def evidence() -> None:
    """The evidence files kept with corrective actions, listed or taken back out.

    \b
    Example:
      capa evidence list CA-2026-0001
      capa evidence get CA-2026-0001 work-order.pdf --out work-order.pdf
    """


@evidence.command("list")
@click.argument("record_id", metavar="ID")
@json_option
@pass_session
def list_(session: Session, record_id: str) -> None:
    """The files kept with a CA (or with the CAs linked to an NC): name, size, SHA-256, the
    step they were kept with, who kept them and when (UTC).

    \b
    Example:
      capa evidence list CA-2026-0001
    """
    emit(session.json, session.app().evidence.evidence_list(record_id), _list_text)


def _list_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no evidence files"
    return table([[r["name"], r["size"], r["sha256"], r["record"], r["attached_to"],
                   r["attached_by"], r["attached_at"]] for r in rows],
                 ["name", "bytes", "sha256", "record", "kept with", "by", "at (utc)"],
                 whole=("sha256",))


@evidence.command("get")
@click.argument("record_id", metavar="ID")
@click.argument("wanted", metavar="NAME|SHA256")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the exact bytes to (a new file is 0600).")
@json_option
@pass_session
def get(session: Session, record_id: str, wanted: str, out: Path) -> None:
    """Write one evidence file of a record, by name or SHA-256, exactly as it was kept.

    The bytes are written only if they still have the SHA-256 they were kept under (exit 6
    otherwise, nothing written). Two different files of one name: give the SHA-256.

    \b
    Example:
      capa evidence get CA-2026-0001 work-order.pdf --out work-order.pdf
      capa evidence get CA-2026-0001 3f9a...c2 --out copy.pdf
    """
    check_out(out)
    entry, content = session.app().evidence.evidence_file(record_id, wanted)
    write_out(out, content, private=True)
    emit(session.json, {**entry, "out": str(out), "bytes": len(content)},
         lambda d: f"written {d['out']}: {d['name']}, {d['bytes']} bytes, sha256 {d['sha256']} "
                   "(checked)")
