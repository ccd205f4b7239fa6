"""`capa nc …`: nonconformity commands. Argument handling and output only."""

from __future__ import annotations

from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, record_text, table, terminal_safe, written
from capa.domain.refs import has_prefix
from capa.domain.values import AMENDABLE_NC_FIELDS, Disposition, NCStatus, Severity, Source

#: The similar NCs a raise names on stderr; --json and `nc list --similar` give them all.
_HINT_LINES = 10

SOURCES = click.Choice([s.value for s in Source])
SEVERITIES = click.Choice([s.value for s in Severity])
DISPOSITIONS = click.Choice([d.value for d in Disposition])
NC_STATUSES = click.Choice([s.value for s in NCStatus])


@click.group()
def nc() -> None:
    """Nonconformities: raise, contain, assess, link, close, cancel, reopen, amend.

    \b
    Example:
      capa nc raise --title "Cracked housing" --description "Seen at final inspection" \\
          --source process --severity major
    """


@nc.command("raise")
@click.option("--title", required=True, help="Short statement of what went wrong.")
@click.option("--description", required=True, help="What was observed, where and how.")
@click.option("--source", required=True, type=SOURCES, help="Where it was found.")
@click.option("--severity", required=True, type=SEVERITIES)
@click.option("--product", help="Product or part concerned.")
@click.option("--lot", help="Lot or batch number.")
@click.option("--external-ref", help="Complaint, recall or 483 item number.")
@click.option("--detected-on", metavar="YYYY-MM-DD", help="Date detected (default: today).")
@json_option
@pass_session
def raise_(session: Session, /, **options: Any) -> None:
    """Raise a new nonconformity (status open).

    \b
    Open NCs of the same product with a similar title are named on stderr (with --json:
    in "similar"), as a hint: read from the list's table, it may miss an NC raised at the
    same moment; capa nc list --similar NC gives the exact answer.

    \b
    Example:
      capa nc raise --title "Seal strength low" --description "Line 3, 12 of 50 below 8 N" \\
          --source process --severity major --product "Pouch P-10" --lot L2407
    """
    result = session.app().nonconformities.raise_nc(**options)
    if session.json:
        emit(True, result, written)
        return
    # Through a server (capa.cli.remote) the result is already the JSON the store's gives.
    raised: Any = result
    data = raised.as_dict() if hasattr(raised, "as_dict") else dict(raised)
    similar = data.pop("similar", [])
    emit(False, data, written)
    if similar:
        # A hint, never a refusal: the NC is raised (stdout); stderr says what to look at.
        lines = [f"hint: {len(similar)} open NC{'s' if len(similar) > 1 else ''} of the same "
                 "product with a similar title (a duplicate, or a recurrence?):"]
        lines += [f"  {s['id']}  {s['status']}  {s['title']}" for s in similar[:_HINT_LINES]]
        if len(similar) > _HINT_LINES:
            lines.append(f"  … and {len(similar) - _HINT_LINES} more")
        lines.append(f"  see: capa nc list --similar {data['id']}")
        click.echo(terminal_safe("\n".join(lines)), err=True)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--action", required=True, help="What was done to contain it.")
@click.option("--disposition", type=DISPOSITIONS, default="none", show_default=True)
@click.option("--location", metavar="WHERE",
              help="Where it was done: warehouse, line, customer site, supplier.")
@json_option
@pass_session
def contain(session: Session, nc_id: str, action: str, disposition: str,
            location: str | None) -> None:
    """Record a containment action (status contained).

    \b
    Example:
      capa nc contain NC-2026-0001 --action "Lot L2407 quarantined" --disposition quarantine \\
          --location "Finished goods warehouse, bay 4"
    """
    result = session.app().nonconformities.contain_nc(nc_id, action=action, disposition=disposition,
                                                      location=location)
    emit(session.json, result, written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--impact", required=True, type=click.IntRange(1, 5), help="1 (negligible) to 5.")
@click.option("--likelihood", required=True, type=click.IntRange(1, 5), help="1 (rare) to 5.")
@click.option("--capa-required/--no-capa-required", "capa_required", required=True,
              default=None, help="Whether a corrective action is needed.")
@click.option("--rationale", help="Why no corrective action is needed (mandatory then, R1).")
@json_option
@pass_session
def assess(session: Session, nc_id: str, impact: int, likelihood: int,
           capa_required: bool | None, rationale: str | None) -> None:
    """Assess risk and decide whether a corrective action is required (status assessed).

    \b
    Example:
      capa nc assess NC-2026-0002 --impact 2 --likelihood 1 --no-capa-required \\
          --rationale "Isolated labelling slip, caught before release"
    """
    if capa_required is None:
        raise click.UsageError("give --capa-required or --no-capa-required")
    emit(session.json, session.app().nonconformities.assess_nc(nc_id, impact=impact,
                                                               likelihood=likelihood,
                                                                capa_required=capa_required,
                                                                rationale=rationale), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.argument("ca_id", metavar="CA")
@json_option
@pass_session
def link(session: Session, nc_id: str, ca_id: str) -> None:
    """Link an assessed NC to an open corrective action (status linked).

    \b
    Example:
      capa nc link NC-2026-0003 CA-2026-0001
    """
    emit(session.json, session.app().corrective_actions.link_nc(nc_id, ca_id), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@json_option
@pass_session
def close(session: Session, nc_id: str) -> None:
    """Close an NC assessed as needing no corrective action (signed: approval).

    NCs with a corrective action close together with it.

    \b
    Example:
      capa nc close NC-2026-0002
    """
    emit(session.json, session.app().nonconformities.close_nc(nc_id), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--reason", required=True, help="Why it is cancelled (kept in the history).")
@json_option
@pass_session
def cancel(session: Session, nc_id: str, reason: str) -> None:
    """Cancel an NC raised in error (status cancelled).

    \b
    Example:
      capa nc cancel NC-2026-0004 --reason "Duplicate of NC-2026-0003"
    """
    emit(session.json, session.app().nonconformities.cancel_nc(nc_id, reason=reason), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--reason", required=True, help="Why it is reopened (kept in the history).")
@json_option
@pass_session
def reopen(session: Session, nc_id: str, reason: str) -> None:
    """Reopen a closed or cancelled NC (status open; its history stays intact).

    \b
    Example:
      capa nc reopen NC-2026-0002 --reason "Same defect found again in lot L2411"
    """
    emit(session.json, session.app().nonconformities.reopen_nc(nc_id, reason=reason), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--field", "field_name", required=True, type=click.Choice(AMENDABLE_NC_FIELDS))
@click.option("--value", required=True,
              help="The corrected value (detected_on: a date YYYY-MM-DD, not in the future).")
@click.option("--reason", required=True, help="Why the correction is made (R6).")
@json_option
@pass_session
def amend(session: Session, nc_id: str, field_name: str, value: str, reason: str) -> None:
    """Correct a field; the old value stays visible in the history (R6).

    \b
    Example:
      capa nc amend NC-2026-0001 --field severity --value critical \\
          --reason "Patient contact confirmed by complaint follow-up"
    """
    emit(session.json, session.app().nonconformities.amend_nc(nc_id, field=field_name, value=value,
                                                               reason=reason), written)


@nc.command()
@click.argument("nc_id", metavar="NC")
@click.option("--as-of", metavar="DATE|DATETIME", help="Show the record as it stood then (UTC).")
@click.option("--version", type=click.IntRange(min=1), help="Show the record at this version.")
@json_option
@pass_session
def show(session: Session, nc_id: str, as_of: str | None, version: int | None) -> None:
    """Show an NC, now or as it stood at a version or time.

    \b
    Example:
      capa nc show NC-2026-0001 --as-of 2026-03-31
    """
    view = session.app().records.show(require_prefix(nc_id, "NC"), version=version, as_of=as_of)
    emit(session.json, view, record_text)


@nc.command("list")
@click.option("--status", "statuses", multiple=True, type=NC_STATUSES)
@click.option("--severity", "severities", multiple=True, type=SEVERITIES)
@click.option("--source", "sources", multiple=True, type=SOURCES)
@click.option("--overdue", is_flag=True, help="Only NCs whose corrective action is overdue.")
@click.option("--similar", "similar_to", metavar="NC",
              help="Only the open NCs similar to NC: same product, similar title.")
@json_option
@pass_session
def list_(session: Session, statuses: tuple[str, ...], severities: tuple[str, ...],
          sources: tuple[str, ...], overdue: bool, similar_to: str | None) -> None:
    """List NCs, filtered by status, severity and source (each repeatable), or those similar
    to one NC.

    Similar: not closed or cancelled, the same product (case aside) and a title sharing at
    least half its words (words of three letters or more, plain endings folded).

    \b
    Example:
      capa nc list --status open --status contained --severity critical
      capa nc list --similar NC-2026-0042
    """
    if similar_to is not None:
        if statuses or severities or sources or overdue:
            raise click.UsageError("--similar lists the open NCs similar to one NC; it takes "
                                   "no other filter")
        views = session.app().queries.similar_ncs(require_prefix(similar_to, "NC"))
    else:
        views = session.app().queries.list_records("nc", statuses=statuses,
                                                   severities=severities, sources=sources,
                                                   overdue=overdue)
    emit(session.json, views, lambda rows: table(
        [[r["id"], r["status"], r["severity"], r["source"], r["detected_on"], r["title"]]
         for r in rows], ["id", "status", "severity", "source", "detected", "title"]))


def require_prefix(ref: str, prefix: str) -> str:
    if not has_prefix(ref, prefix):
        raise click.BadParameter(f"{ref!r} is not a {prefix} id", param_hint="'NC'"
                                 if prefix == "NC" else "'CA'")
    return ref
