"""`capa history` and `capa overdue`: the audit trail of one record, and what is late."""

from __future__ import annotations

import json
from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, table


@click.command()
@click.argument("record_id", metavar="ID")
@json_option
@pass_session
def history(session: Session, record_id: str) -> None:
    """The audit trail of one record: every event, who, when (UTC), what changed and why.

    \b
    Example:
      capa history CA-2026-0001
    """
    emit(session.json, session.app().history(record_id), _history_text)


def _history_text(entries: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for e in entries:
        who = e["actor"] if not e["actor_name"] or e["actor_name"] == e["actor"] \
            else f"{e['actor_name']} ({e['actor']})"
        lines.append(f"#{e['position']}  v{e['version']}  {e['time']}  {who}  {e['event_type']}")
        for change in e["changes"]:
            if change["old"] is None and isinstance(change["new"], list):
                for added in change["new"]:
                    lines.append(f"    {change['field']} + {_short(added)}")
            else:
                lines.append(
                    f"    {change['field']}: {_short(change['old'])} -> {_short(change['new'])}"
                )
        if e["reason"]:
            lines.append(f"    reason: {e['reason']}")
        sig = e["signature"]
        if sig:
            lines.append(f"    signed by {sig['full_name']} ({sig['user_id']}) at "
                         f"{sig['signed_at']}, meaning: {sig['meaning']}; content sha256 "
                         f"{sig['content_sha256'][:16]}…")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


@click.command()
@json_option
@pass_session
def overdue(session: Session) -> None:
    """Open action items past their due date, and implemented CAs awaiting verification.

    \b
    Example:
      capa overdue
    """
    emit(session.json, session.app().overdue(), lambda rows: table(
        [[r["ca"], r["kind"], r["action"], r["assignee"], r["due"], r["days_overdue"],
          r["title"]] for r in rows],
        ["ca", "kind", "action", "assignee", "due", "days late", "title"]) if rows
        else "nothing overdue")

