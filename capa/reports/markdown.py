"""The 8D report as Markdown, user text escaped so that it cannot pass for the report's own
structure."""

from __future__ import annotations

import re

from capa.reports.eightd import Report, manifestation

__all__ = ["md_escape", "to_markdown"]


# Markdown and HTML that user text could use to pass for the report's own structure: a heading,
# a signature block, a table, a link, an HTML comment that hides what follows. Each is shown
# literally (a backslash escape, CommonMark 2.4); the characters that only mean something at the
# start of a line are escaped there.
_MD_ANYWHERE = re.compile(r"([\\`*_\[\]<>!|~{}&$])")
_MD_LINE_START = re.compile(r"^([#>+\-=])")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])")


def md_escape(text: str) -> str:
    """User text as Markdown that renders as exactly that text: every line a line of its own
    (hard line breaks), blank lines kept as paragraph breaks, leading indentation dropped (it
    would make a code block)."""
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _MD_ANYWHERE.sub(r"\\\1", raw.strip())
        line = _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", line))
        out.append(line)
    lines: list[str] = []
    for i, line in enumerate(out):
        if line and i + 1 < len(out) and out[i + 1]:
            line += "\\"  # a hard line break: the next line belongs to the same paragraph
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    # A table cell is one line: its line breaks become <br>, the only HTML in the report.
    return "<br>".join(md_escape(line) for line in text.splitlines() if line.strip())


def _md_inline(text: str) -> str:
    """User text inside one line of the report's own (a heading, a signature line)."""
    return md_escape(" ".join(text.split()))


def to_markdown(report: Report) -> str:
    lead = (md_escape(report.summary) if report.summary is not None else
            f"Status **{_md_inline(report.status)}**, version {report.version}. "
            f"{_md_inline(report.organisation) + '. ' if report.organisation else ''}"
            f"Generated {report.generated_at}.")
    lines = [f"# {report.heading}: {_md_inline(report.title)}", "", lead, ""]
    for section in report.sections:
        lines += [f"## {section.code} {section.title}", ""]
        for kind, body in section.blocks:
            if kind == "p":
                lines += [md_escape(body), ""]
            elif kind == "table":
                headers, rows = body
                lines.append("| " + " | ".join(headers) + " |")
                lines.append("|" + "---|" * len(headers))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                lines.append("")
            elif kind == "chart":
                continue  # drawn in HTML and PDF; its table says the same
            else:
                label, sig = body
                lines += [f"> **Signature - {_md_inline(label)}:** "
                          f"{_md_inline(manifestation(sig))}", ""]
    return "\n".join(lines)
