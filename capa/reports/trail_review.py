"""An audit-trail review (capa.app.reviews) as a reviewer reads it: plain text grouped by
category, or Markdown with every user value escaped (capa.reports.markdown)."""

from __future__ import annotations

from typing import Any

from capa.audit.trail_exceptions import CATEGORIES
from capa.reports.markdown import md_escape

__all__ = ["review_markdown", "review_text"]


def _who(item: dict[str, Any]) -> str:
    name, actor = item["actor_name"], item["actor"]
    return f"{name} ({actor})" if name and name != actor else actor or "(no user)"


def _heading(review: dict[str, Any]) -> list[str]:
    return [f"Audit-trail review {review['from']} to {review['to']}: {review['total']} "
            f"exception(s) to look at",
            f"Exceptions SHA-256: {review['exceptions_sha256']}"]


def _signed(review: dict[str, Any]) -> str | None:
    sig = review.get("signature")
    if not sig:
        return None
    return (f"Review signed by {sig['full_name']} ({sig['user_id']}) at {sig['signed_at']} "
            f"(UTC), meaning: {sig['meaning']}; recorded as {review['id']} version "
            f"{review['version']}")


def review_text(review: dict[str, Any]) -> str:
    """The review as aligned plain text: each category with its count, then its exceptions,
    one line each (position, time, record and version, who, what, why)."""
    lines = _heading(review)
    for key, label in CATEGORIES.items():
        items = [i for i in review["exceptions"] if i["category"] == key]
        lines += ["", f"{label}: {review['counts'][key]}"]
        for i in items:
            reason = f"  (reason: {' '.join(i['reason'].split())})" if i["reason"] else ""
            lines.append(f"  #{i['position']}  {i['time']}  {i['record']} v{i['version']}  "
                         f"{_who(i)}  {' '.join(i['detail'].split())}{reason}")
    signed = _signed(review)
    if signed:
        lines += ["", signed]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return md_escape(" ".join(text.split())) or "-"


def _reason_cell(reason: str | None) -> str:
    return _cell(reason) if reason else "-"


def review_markdown(review: dict[str, Any]) -> str:
    """The review as Markdown: a section per category with a table of its exceptions; user
    text (details, reasons, names) escaped so that it cannot pass for the review's own
    structure."""
    title, digest = _heading(review)
    lines = [f"# {title}", "", f"{digest}", "",
             f"Late entries: recorded more than {review['late_entry_days']} days after the "
             "business date, or on someone's behalf.", ""]
    for key, label in CATEGORIES.items():
        items = [i for i in review["exceptions"] if i["category"] == key]
        lines += [f"## {label} ({review['counts'][key]})", ""]
        if not items:
            lines += ["None.", ""]
            continue
        lines += ["| position | time (UTC) | record | version | by | what | reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {i['position']} | {i['time']} | {_cell(i['record'])} | {i['version']} | "
                  f"{_cell(_who(i))} | {_cell(i['detail'])} | {_reason_cell(i['reason'])} |"
                  for i in items]
        lines.append("")
    signed = _signed(review)
    if signed:
        lines += [f"> **Signature - review:** {md_escape(signed)}", ""]
    return "\n".join(lines)
