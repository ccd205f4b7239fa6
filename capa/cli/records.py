"""`capa history` and `capa overdue`: the audit trail of one record, and what is late."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, table, terminal_safe


@click.command()
@click.argument("record_id", metavar="ID")
@click.option("--diff", "diff", is_flag=True,
              help="Only what changed: one line per event, each field as old -> new.")
@json_option
@pass_session
def history(session: Session, record_id: str, diff: bool) -> None:
    """The audit trail of one record: every event, who, when (UTC), what changed and why.
    ID is an NC, a CA, a user id, or STORE (the store's creation and profile changes).

    \b
    Example:
      capa history CA-2026-0001
      capa history NC-2026-0001 --diff
      capa history STORE
    """
    entries = session.app().records.history(record_id)
    if diff and session.json:
        emit(True, [{"position": e["position"], "version": e["version"], "time": e["time"],
                     "actor": e["actor"], "event_type": e["event_type"],
                     "changes": e["changes"], "reason": e["reason"]}
                    for e in _as_data(entries)], str)
        return
    emit(session.json, entries, _diff_text if diff else _history_text)


def _as_data(entries: Any) -> list[dict[str, Any]]:
    from capa.cli.output import to_data

    data: list[dict[str, Any]] = to_data(entries)
    return data


def _diff_text(entries: list[dict[str, Any]]) -> str:
    """One line per event: who, what type, and only the fields that changed (old -> new)."""
    lines: list[str] = []
    for e in entries:
        changes = []
        for change in e["changes"]:
            if change["old"] is None and isinstance(change["new"], list):
                changes += [f"{change['field']} + {_whole(added)}" for added in change["new"]]
            elif change["old"] is None:
                changes.append(f"{change['field']}={_whole(change['new'])}")
            else:
                changes.append(f"{change['field']}: {_whole(change['old'])} -> "
                               f"{_whole(change['new'])}")
        reason = f"  (reason: {e['reason']})" if e["reason"] else ""
        signed = f"  [signed: {e['signature']['meaning']}]" if e["signature"] else ""
        lines.append(f"v{e['version']} {e['time']} {e['actor']} {e['event_type']}: "
                     f"{'; '.join(changes) or 'no field changed'}{reason}{signed}")
    return "\n".join(lines)


def _history_text(entries: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for e in entries:
        who = e["actor"] if not e["actor_name"] or e["actor_name"] == e["actor"] \
            else f"{e['actor_name']} ({e['actor']})"
        lines.append(f"#{e['position']}  v{e['version']}  {e['time']}  {who}  {e['event_type']}")
        for change in e["changes"]:
            if change["old"] is None and isinstance(change["new"], list):
                for added in change["new"]:
                    lines += _wrapped(f"{change['field']} + ", _whole(added))
            else:
                lines += _wrapped(f"{change['field']}: ",
                                  f"{_whole(change['old'])} -> {_whole(change['new'])}")
        if e["reason"]:
            lines += _wrapped("reason: ", e["reason"])
        sig = e["signature"]
        if sig:
            how = (f"digital signature, {sig.get('algorithm')} key {sig.get('key_id')}"
                   if sig.get("kind") == "digital" else "password-attested (no digital signature)")
            lines += _wrapped("signed by ", f"{sig['full_name']} ({sig['user_id']}) at "
                              f"{sig['signed_at']}, meaning: {sig['meaning']}; content sha256 "
                              f"{sig['content_sha256']}; {how}")
    return "\n".join(lines)


#: Human history is read in a terminal: values wrap at this width, indented under their field.
_WIDTH = 100
_INDENT = "    "


def _wrapped(label: str, text: str) -> list[str]:
    """`label` and the whole of `text` (an R1 rationale, a long description), wrapped to the
    terminal width with continuation lines indented; its own line breaks are kept."""
    lines: list[str] = []
    first, rest = _INDENT + label, _INDENT * 2
    # Escaped first: wrapping would quietly turn a carriage return or tab into a space.
    for paragraph in terminal_safe(text).split("\n"):
        wrapped = textwrap.wrap(paragraph, width=_WIDTH, initial_indent=first,
                                subsequent_indent=rest, break_on_hyphens=False) or [first.rstrip()]
        lines += wrapped
        first = rest
    return lines


def _whole(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@click.command()
@json_option
@pass_session
def overdue(session: Session) -> None:
    """Open action items past their due date, implemented CAs awaiting verification, and
    planned effectiveness checks past their due date (kind check-overdue).

    \b
    Example:
      capa overdue
    """
    emit(session.json, session.app().queries.overdue(), lambda rows: table(
        [[r["ca"], r["kind"], r["action"], r["assignee"], r["due"], r["days_overdue"],
          r["title"]] for r in rows],
        ["ca", "kind", "action", "assignee", "due", "days late", "title"]) if rows
        else "nothing overdue")

