"""`capa notify`: reminder and escalation e-mails about action items and corrective actions."""

from __future__ import annotations

import os
from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, table

#: Defaults of the thresholds (capa.app.notifications keeps the same numbers).
DUE_SOON_DAYS = 7
ESCALATE_AFTER_DAYS = 14


@click.command()
@click.option("--dry-run", is_flag=True,
              help="List what would be sent; send nothing and record nothing.")
@click.option("--today", metavar="YYYY-MM-DD",
              help="With --dry-run: preview the messages due on that day.")
@click.option("--due-soon-days", type=click.IntRange(0, 365), default=DUE_SOON_DAYS,
              show_default=True, envvar="CAPA_NOTIFY_DUE_SOON_DAYS",
              help="Remind an assignee this many days before an item's due date (env "
                   "CAPA_NOTIFY_DUE_SOON_DAYS).")
@click.option("--escalate-after-days", type=click.IntRange(1, 3650),
              default=ESCALATE_AFTER_DAYS, show_default=True,
              envvar="CAPA_NOTIFY_ESCALATE_AFTER_DAYS",
              help="Tell every quality user about an item overdue this many days or more (env "
                   "CAPA_NOTIFY_ESCALATE_AFTER_DAYS).")
@json_option
@pass_session
def notify(session: Session, dry_run: bool, today: str | None, due_soon_days: int,
           escalate_after_days: int) -> None:
    """Send reminder e-mails: due soon, overdue, awaiting verification, escalation (quality).

    Each message goes once per threshold to each person (an extension of the due date re-arms
    an item's reminders) and is recorded. The mail server is CAPA_SMTP_URL
    (smtp://host:port, smtp://host:587?starttls=yes or smtps://host, with user:password@ if
    it needs a login); the sender is CAPA_SMTP_FROM. People without an e-mail address are
    listed as skipped (capa user email). Exit code 5 when a message could not be sent: it was
    not recorded, and the next run sends it.

    \b
    Example:
      CAPA_SMTP_URL=smtp://mail.example.com:587?starttls=yes capa notify
      capa notify --dry-run --today 2026-12-24
    """
    from capa.domain.errors import Conflict

    report = session.app().notifications.notify(
        dry_run=dry_run, today=today, due_soon_days=due_soon_days,
        escalate_after_days=escalate_after_days,
        smtp_url=os.environ.get("CAPA_SMTP_URL"), sender=os.environ.get("CAPA_SMTP_FROM"))
    emit(session.json, report, _report_text)
    failed = len(report["failed"])
    if failed:
        raise Conflict(f"{failed} of {failed + len(report['sent'])} messages could not be sent "
                       f"({report['failed'][0]['error']}); they were not recorded, and the next "
                       "capa notify sends them")


def _report_text(report: dict[str, Any]) -> str:
    rows = [[status, m["kind"], m["record"], m["action"], m["to"], m.get("address"),
             m.get("reason") or m.get("error") or m["subject"]]
            for status, key in (("sent", "sent"), ("would send", "would_send"),
                                ("FAILED", "failed"), ("skipped", "skipped"))
            for m in report[key]]
    head = (f"{'dry run: ' if report['dry_run'] else ''}reminders as of {report['as_of']}: "
            f"{len(report['sent'])} sent, {len(report['would_send'])} would be sent, "
            f"{len(report['failed'])} failed, {len(report['skipped'])} skipped, "
            f"{report['already_sent']} sent before")
    if not rows:
        return head
    return head + "\n" + table(rows, ["outcome", "kind", "record", "action", "to", "address",
                                      "subject or reason"])
