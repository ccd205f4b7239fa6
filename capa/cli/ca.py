"""`capa ca …`: corrective action commands. Argument handling and output only."""

from __future__ import annotations

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.nc import SEVERITIES, SOURCES, require_prefix
from capa.cli.output import emit, record_text, table, written
from capa.domain.values import ActionType, CAStatus, CauseCategory, RootCauseMethod

METHODS = click.Choice([m.value for m in RootCauseMethod])
CATEGORIES = click.Choice([c.value for c in CauseCategory])
TYPES = click.Choice([t.value for t in ActionType])
CA_STATUSES = click.Choice([s.value for s in CAStatus])
EVIDENCE = click.Path(exists=True, dir_okay=False, readable=True)


@click.group()
def ca() -> None:
    """Corrective actions: open, investigate, plan, approve, complete, verify, close.

    \b
    Example:
      capa ca open --title "Housing cracks" --problem "Cracks at boss B2" --owner apatel \\
          --nc NC-2026-0001
    """


@ca.command("open")
@click.option("--title", required=True)
@click.option("--problem", required=True, help="Problem statement.")
@click.option("--owner", required=True, help="User id of the action owner.")
@click.option("--nc", "ncs", multiple=True, metavar="NC",
              help="Assessed NC needing this CA (repeatable); it becomes linked.")
@json_option
@pass_session
def open_(session: Session, title: str, problem: str, owner: str, ncs: tuple[str, ...]) -> None:
    """Open a corrective action, optionally for assessed NCs.

    \b
    Example:
      capa ca open --title "Housing cracks" --problem "Cracks at boss B2 after 3 weeks" \\
          --owner apatel --nc NC-2026-0001 --nc NC-2026-0003
    """
    emit(session.json, session.app().corrective_actions.open_ca(title=title, problem=problem,
                                                                owner=owner,
                                                                 ncs=ncs), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--method", required=True, type=METHODS)
@click.option("--root-cause", required=True, help="The root cause found.")
@click.option("--category", required=True, type=CATEGORIES, help="Ishikawa 6M category.")
@click.option("--why", "whys", multiple=True, help="One step of the why chain (repeatable).")
@json_option
@pass_session
def investigate(session: Session, ca_id: str, method: str, root_cause: str, category: str,
                whys: tuple[str, ...]) -> None:
    """Record a root-cause analysis (repeatable: the latest is current, all are kept).

    \b
    Example:
      capa ca investigate CA-2026-0001 --method 5-whys --category machine \\
          --why "Boss cracks" --why "Hoop stress too high" --root-cause "Mould gate worn"
    """
    emit(session.json, session.app().corrective_actions.investigate_ca(ca_id, method=method,
                                                                       root_cause=root_cause,
                                                                        category=category,
                                                                       whys=whys), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--action", required=True, help="What is to be done.")
@click.option("--assignee", required=True, help="User id who will do it.")
@click.option("--due", required=True, metavar="YYYY-MM-DD")
@click.option("--type", "action_type", required=True, type=TYPES)
@click.option("--allow-past-due", is_flag=True,
              help="Accept a due date before today (needs --reason; R5).")
@click.option("--reason", default=None, help="Why a past due date is accepted (kept).")
@json_option
@pass_session
def plan(session: Session, ca_id: str, action: str, assignee: str, due: str,
         action_type: str, allow_past_due: bool, reason: str | None) -> None:
    """Add an action item to the plan (after approval this voids the approval). The assignee
    is any active user who may write records. A due date before today is refused (R5) unless
    accepted with --allow-past-due and a reason.

    \b
    Example:
      capa ca plan CA-2026-0001 --action "Replace gate insert" --assignee apatel \\
          --due 2026-12-15 --type corrective
    """
    if reason is not None and not allow_past_due:
        raise click.UsageError("--reason goes with --allow-past-due")
    accepted = (reason or "") if allow_past_due else None
    emit(session.json, session.app().corrective_actions.plan_ca(ca_id, action=action,
                                                                assignee=assignee, due=due,
                                                                 action_type=action_type,
                                                                 past_due_reason=accepted), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@json_option
@pass_session
def approve(session: Session, ca_id: str) -> None:
    """Approve the plan (signed: approval; the approver is not the owner, R2).

    \b
    Example:
      capa ca approve CA-2026-0001
    """
    emit(session.json, session.app().corrective_actions.approve_ca(ca_id), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.argument("action", metavar="ACTION")
@click.option("--note", required=True, help="What was done.")
@click.option("--evidence", multiple=True, type=EVIDENCE, help="File to keep (≤ 25 MiB).")
@click.option("--on-behalf-of", "on_behalf_of", default=None, metavar="USER",
              help="Quality records the completion for the assignee or owner who did the work "
                   "(needs --reason).")
@click.option("--reason", default=None, help="Why the completion is recorded on their behalf.")
@json_option
@pass_session
def complete(session: Session, ca_id: str, action: str, note: str,
             evidence: tuple[str, ...], on_behalf_of: str | None, reason: str | None) -> None:
    """Mark an action item done; the last one makes the CA implemented. The item's assignee or
    the CA owner completes it, or quality records it on their behalf with a reason.

    \b
    Example:
      capa ca complete CA-2026-0001 A1 --note "Insert replaced" --evidence work-order.pdf
      capa ca complete CA-2026-0001 A2 --note "Sorted 312 units" --on-behalf-of lnguyen \\
          --reason "Night shift has no terminal; paper record WO-4471"
    """
    if reason is not None and on_behalf_of is None:
        raise click.UsageError("--reason goes with --on-behalf-of")
    emit(session.json, session.app().corrective_actions.complete_action(ca_id, action, note=note,
                                                                         evidence=evidence,
                                                                        on_behalf_of=on_behalf_of,
                                                                         reason=reason), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.argument("action", metavar="ACTION")
@click.option("--due", required=True, metavar="YYYY-MM-DD", help="The new, later due date.")
@click.option("--reason", required=True, help="Why more time is needed (R5).")
@click.option("--allow-past-due", is_flag=True,
              help="Accept a new due date that is still before today (R5).")
@json_option
@pass_session
def extend(session: Session, ca_id: str, action: str, due: str, reason: str,
           allow_past_due: bool) -> None:
    """Extend an action item's due date, with a reason (R5). A new date before today is
    refused unless --allow-past-due.

    \b
    Example:
      capa ca extend CA-2026-0001 A2 --due 2027-01-31 --reason "Supplier tooling lead time"
    """
    cas = session.app().corrective_actions
    emit(session.json, cas.extend_action(ca_id, action, due=due, reason=reason,
                                         allow_past_due=allow_past_due), written)


@ca.command("plan-check")
@click.argument("ca_id", metavar="CA")
@click.option("--criteria", required=True,
              help="What will show the actions worked (e.g. no cracks in 3 consecutive lots).")
@click.option("--due", required=True, metavar="YYYY-MM-DD", help="When the check is made.")
@click.option("--method", default=None, help="How it is checked (sampling, audit, data).")
@click.option("--reason", default=None,
              help="Why a check already planned for this iteration is replaced (kept).")
@json_option
@pass_session
def plan_check(session: Session, ca_id: str, criteria: str, due: str, method: str | None,
               reason: str | None) -> None:
    """Plan the effectiveness check up front: its criteria, method and due date. `ca verify`
    then answers it; replacing a planned check needs a reason.

    \b
    Example:
      capa ca plan-check CA-2026-0001 --criteria "No cracked housings in 3 consecutive lots" \
          --method "100% visual inspection at final test" --due 2027-02-15
    """
    emit(session.json, session.app().corrective_actions.plan_check(
        ca_id, criteria=criteria, due=due, method=method, reason=reason), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--effective", is_flag=True, help="The actions worked: the CA may close.")
@click.option("--not-effective", is_flag=True,
              help="They did not: a new iteration starts (status investigated).")
@click.option("--inconclusive", is_flag=True,
              help="Too early to tell: the planned check moves to --due, for --reason.")
@click.option("--note", required=True, help="What was checked and found.")
@click.option("--evidence", multiple=True, type=EVIDENCE, help="File to keep (≤ 25 MiB).")
@click.option("--due", default=None, metavar="YYYY-MM-DD",
              help="With --inconclusive: the check's new, later due date.")
@click.option("--reason", default=None, help="With --inconclusive: why more time is needed.")
@json_option
@pass_session
def verify(session: Session, ca_id: str, effective: bool, not_effective: bool,
           inconclusive: bool, note: str, evidence: tuple[str, ...], due: str | None,
           reason: str | None) -> None:
    """Verify effectiveness against the planned check (signed: verification; by someone who
    did none of the actions, R3).

    Not effective: a new iteration starts (status investigated). Inconclusive: the planned
    check is extended to a later date with a reason; the CA stays implemented.

    \b
    Example:
      capa ca verify CA-2026-0001 --effective --note "No cracks in 3 lots / 1,200 units"
      capa ca verify CA-2026-0001 --inconclusive --note "Only one lot produced so far" \
          --due 2027-03-31 --reason "Production paused for the line move"
    """
    if effective + not_effective + inconclusive != 1:
        raise click.UsageError("give exactly one of --effective, --not-effective and "
                               "--inconclusive")
    if not inconclusive and (due is not None or reason is not None):
        raise click.UsageError("--due and --reason go with --inconclusive")
    if inconclusive and (due is None or reason is None):
        raise click.UsageError("--inconclusive needs --due (the new date) and --reason")
    emit(session.json, session.app().corrective_actions.verify_ca(
        ca_id, effective=effective, note=note, evidence=evidence, inconclusive=inconclusive,
        due=due, reason=reason), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--statement", required=True,
              help="Why the actions do not adversely affect safety, performance or regulatory "
                   "compliance.")
@click.option("--risk-file", default=None, metavar="REF",
              help="The risk management file (entry) reviewed.")
@click.option("--change", "changes", multiple=True, metavar="REF",
              help="A document change made by the actions (repeatable).")
@click.option("--training", multiple=True, metavar="REF",
              help="A training record for the change (repeatable).")
@json_option
@pass_session
def impact(session: Session, ca_id: str, statement: str, risk_file: str | None,
           changes: tuple[str, ...], training: tuple[str, ...]) -> None:
    """Record that this iteration's actions do no harm (ISO 13485 8.5.2 e). In a store of the
    iso13485 profile a CA closes only after it (R11).

    \b
    Example:
      capa ca impact CA-2026-0001 --statement "Gate insert is like for like; no change to \
          the validated moulding window" --risk-file RMF-017 rev 4 --change DCO-2291 \
          --training TR-0456
    """
    emit(session.json, session.app().corrective_actions.assess_impact(
        ca_id, statement=statement, risk_file=risk_file, changes=changes, training=training),
        written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@json_option
@pass_session
def close(session: Session, ca_id: str) -> None:
    """Close a verified CA (signed: approval); its linked NCs close with it (R4).

    \b
    Example:
      capa ca close CA-2026-0001
    """
    emit(session.json, session.app().corrective_actions.close_ca(ca_id), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--reason", required=True)
@json_option
@pass_session
def cancel(session: Session, ca_id: str, reason: str) -> None:
    """Cancel a CA (status cancelled), with a reason.

    \b
    Example:
      capa ca cancel CA-2026-0002 --reason "Merged into CA-2026-0001"
    """
    emit(session.json, session.app().corrective_actions.cancel_ca(ca_id, reason=reason), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--reason", required=True)
@json_option
@pass_session
def reopen(session: Session, ca_id: str, reason: str) -> None:
    """Reopen a closed or cancelled CA (status investigated), with a reason.

    \b
    Example:
      capa ca reopen CA-2026-0001 --reason "Cracks recurred in lot L2502"
    """
    emit(session.json, session.app().corrective_actions.reopen_ca(ca_id, reason=reason), written)


@ca.command()
@click.argument("ca_id", metavar="CA")
@click.option("--as-of", metavar="DATE|DATETIME", help="Show the record as it stood then (UTC).")
@click.option("--version", type=click.IntRange(min=1), help="Show the record at this version.")
@json_option
@pass_session
def show(session: Session, ca_id: str, as_of: str | None, version: int | None) -> None:
    """Show a CA, now or as it stood at a version or time.

    \b
    Example:
      capa ca show CA-2026-0001 --version 7
    """
    view = session.app().records.show(require_prefix(ca_id, "CA"), version=version, as_of=as_of)
    emit(session.json, view, record_text)


@ca.command("list")
@click.option("--status", "statuses", multiple=True, type=CA_STATUSES)
@click.option("--severity", "severities", multiple=True, type=SEVERITIES,
              help="Severity of a linked NC.")
@click.option("--source", "sources", multiple=True, type=SOURCES, help="Source of a linked NC.")
@click.option("--overdue", is_flag=True, help="Only CAs with an overdue action item.")
@json_option
@pass_session
def list_(session: Session, statuses: tuple[str, ...], severities: tuple[str, ...],
          sources: tuple[str, ...], overdue: bool) -> None:
    """List CAs, filtered by status (repeatable) and overdue items.

    \b
    Example:
      capa ca list --status approved --overdue
    """
    views = session.app().queries.list_records("ca", statuses=statuses, severities=severities,
                                               sources=sources, overdue=overdue)
    emit(session.json, views, lambda rows: table(
        [[r["id"], r["status"], r["owner"], r["iteration"], r["title"]] for r in rows],
        ["id", "status", "owner", "iteration", "title"]))
