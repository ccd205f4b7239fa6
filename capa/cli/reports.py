"""`capa readmodels`, `report`, `dashboard` and `management-review`: argument handling and
output."""

from __future__ import annotations

from pathlib import Path

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.outfile import check_out, write_out
from capa.cli.output import emit
from capa.domain.errors import InvalidInput


@click.group()
def readmodels() -> None:
    """Read models: the projections that lists, overdue and the dashboard read.

    \b
    Example:
      capa readmodels rebuild
    """


@readmodels.command()
@json_option
@pass_session
def rebuild(session: Session) -> None:
    """Drop the read tables and project the whole event log again; delete the snapshot rows
    that earlier releases kept (capa reads none). This repairs every cache that
    `capa audit verify` reports as not matching the events.

    \b
    Example:
      capa --db quality.db readmodels rebuild
    """
    emit(session.json, session.app().queries.rebuild_read_models(), lambda d: (
        f"read models rebuilt up to position {d['position']}: {d['nonconformities']} NCs, "
        f"{d['corrective_actions']} CAs, {d['action_items']} action items"
        + (f"; {d['snapshots_removed']} snapshot row(s) removed"
           if d["snapshots_removed"] else "")))


# The report formats and the file extensions each is taken from when --format is not given.
REPORT_EXTENSIONS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
                     ".pdf": "pdf"}


def report_format(fmt: str | None, out: Path) -> str:
    """--format if given, else the format `out`'s extension names (InvalidInput, exit 2, when it
    names none)."""
    if fmt is not None:
        return fmt
    found = REPORT_EXTENSIONS.get(out.suffix.lower())
    if found is None:
        raise InvalidInput(f"cannot tell the report format from {out.name!r}: give --format "
                           "md, html or pdf, or name the file .md, .html or .pdf")
    return found


@click.command()
@click.argument("record_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "pdf"]),
              help="md, html or pdf (default: from --out's extension: .md .markdown .html "
                   ".htm .pdf).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
@pass_session
def report(session: Session, record_id: str, fmt: str | None, out: Path) -> None:
    """Write the 8D report of an NC or CA (D1 team ... D8 closure), signatures shown with
    printed name, UTC time and meaning (21 CFR 11.50). Without --format the format is taken
    from --out's extension.

    \b
    Example:
      capa report CA-2026-0001 --out CA-2026-0001.pdf
      capa report CA-2026-0001 --format md --out CA-2026-0001.txt
    """
    fmt = report_format(fmt, out)
    check_out(out)
    content = session.app().queries.render_report(record_id, fmt)
    write_out(out, content)
    emit(session.json, {"id": record_id.upper(), "format": fmt, "out": str(out),
                        "bytes": len(content)}, lambda d: f"written {d['out']}")


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--from", "start", metavar="YYYY-MM-DD",
              help="First day of the period (default: the first day of the twelfth month "
                   "back from --to).")
@click.option("--to", "end", metavar="YYYY-MM-DD", help="Last day of the period (default: today).")
@json_option
@pass_session
def dashboard(session: Session, out: Path, start: str | None, end: str | None) -> None:
    """Write the KPI dashboard: one HTML file with its charts drawn inline (SVG), which opens
    offline and prints without splitting a chart.

    Trend, Paretos and breakdowns (severity, risk level, owner) count the records of the
    period: NCs by their detection date, CAs by the date they were opened; every month of the
    period is shown, empty ones as zero. Open counts, ages and overdue items are as of today.
    Cancelled records are left out of every figure.

    \b
    Example:
      capa dashboard --out dashboard.html --from 2026-01-01 --to 2026-06-30
    """
    from capa.domain.values import parse_date

    # Dates are checked here; the period itself (from on or before to, at most 600 months)
    # where the dashboard is drawn, before anything is written.
    first = parse_date(start, "--from") if start is not None else None
    last = parse_date(end, "--to") if end is not None else None
    check_out(out)
    html = session.app().queries.render_dashboard(
        start=first.isoformat() if first else None,
        end=last.isoformat() if last else None).encode()
    write_out(out, html)
    emit(session.json, {"out": str(out), "bytes": len(html)},
         lambda d: f"written {d['out']}")


@click.command("management-review")
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD",
              help="First day of the period reviewed.")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD",
              help="Last day of the period reviewed, included.")
@click.option("--format", "fmt", type=click.Choice(["pdf", "html", "md"]),
              help="pdf, html or md (default: from --out's extension: .pdf .html .htm .md "
                   ".markdown).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
@pass_session
def management_review(session: Session, start: str, end: str, fmt: str | None,
                      out: Path) -> None:
    """Write the management review pack of a period: the CAPA inputs of ISO 9001 9.3.2 and
    ISO 13485 5.6.2, folded from the event log.

    NCs and CAs per month with c-chart control limits (centre c̄ = the mean monthly count,
    UCL = c̄ + 3√c̄, LCL = max(0, c̄ − 3√c̄)) and the months that break them; recurrence by
    product and cause category; overdue actions and due-date extensions; the effectiveness rate;
    open CAPAs by age band and owner. Quality, admin and auditors may write it.

    \b
    Example:
      capa management-review --from 2026-01-01 --to 2026-06-30 --out review-H1.pdf
      capa management-review --from 2026-01-01 --to 2026-12-31 --format md --out review.txt
    """
    from capa.app.reviews import review_period

    review_period(start, end)
    fmt = report_format(fmt, out)
    check_out(out)
    content = session.app().reviews.management_review(start, end, fmt)
    write_out(out, content)
    emit(session.json, {"from": start, "to": end, "format": fmt, "out": str(out),
                        "bytes": len(content)}, lambda d: f"written {d['out']}")
