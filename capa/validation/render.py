"""The validation report as Markdown and HTML, and writing both beside the raw results."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from capa.validation.report import (
    Outcome,
    Package,
    RequirementRow,
    Result,
    ScenarioResult,
    ValidationReport,
    Verdict,
)

__all__ = [
    "HTML_NAME",
    "MARKDOWN_NAME",
    "WrittenFile",
    "render_html",
    "render_markdown",
    "write_file",
    "write_reports",
]

HTML_NAME = "validation-report.html"
MARKDOWN_NAME = "validation-report.md"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _facts(report: ValidationReport) -> list[tuple[str, str]]:
    env = report.environment
    exit_code = "none" if report.suite_exit_code is None else str(report.suite_exit_code)
    facts = [
        ("Run started (UTC)", _utc(report.started_at)),
        ("Run finished (UTC)", _utc(report.finished_at)),
        ("capa version", env.capa_version),
        ("Git commit", env.git_commit),
        ("Python", env.python),
        ("Platform", env.platform),
        ("Host", env.host),
        ("Gherkin suite exit status", exit_code),
    ]
    if report.raw_results is not None:
        raw = report.raw_results
        facts.append(("Raw results", f"{raw.name} (SHA-256 {raw.sha256})"))
    return facts


def _summary(report: ValidationReport) -> str:
    results = ", ".join(f"{report.count(result)} {result.value.lower()}" for result in Result)
    outcomes = ", ".join(
        f"{report.count_outcome(outcome)} {outcome.value}" for outcome in Outcome
    )
    return f"Requirements: {results}. Scenarios: {outcomes}."


def _verdict_text(report: ValidationReport) -> str:
    if report.verdict is Verdict.PASS:
        return (
            "Every requirement that needs evidence is proved by passing scenarios on this build "
            "and this machine. Planned and out-of-scope requirements are listed under Gaps."
        )
    return "Validation failed: " + "; ".join(report.verdict_reasons) + "."


def _declared_gaps(report: ValidationReport) -> list[RequirementRow]:
    return [r for r in report.rows if r.result in (Result.PLANNED, Result.OUT_OF_SCOPE)]


def _open_gaps(report: ValidationReport) -> list[RequirementRow]:
    return [r for r in report.rows if r.result in (Result.FAIL, Result.GAP)]


_FOOTER = (
    "The SHA-256 of this file is printed by the run that wrote it; keep that digest with the "
    "file so that any later change to it can be detected."
)


def _md(text: str) -> str:
    """Text made safe for a Markdown table cell (renderers pass raw HTML through)."""
    escaped = html.escape(text, quote=False).replace("|", "\\|")
    return "<br>".join(line.strip() for line in escaped.splitlines())


def render_markdown(report: ValidationReport) -> str:
    out = ["# capa validation report", ""]
    out += [f"**Verdict: {report.verdict.value}**. {_md(_verdict_text(report))}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {_md(k)} | {_md(v)} |" for k, v in _facts(report)]
    out += ["", _md(_summary(report)), ""]

    out += ["## Traceability matrix", ""]
    out += ["| Requirement | Source | Statement | Scenarios | Result |", "|---|---|---|---|---|"]
    for row in report.rows:
        req = row.requirement
        statement = _md(req.statement) + (f"<br>*Firm:* {_md(req.note)}" if req.note else "")
        evidence = "<br>".join(
            f"{s.outcome.value}: `{_md(s.location)}` {_md(s.title)}" for s in row.scenarios
        )
        out.append(
            f"| {_md(req.id)} | {_md(req.source)} | {statement} | {evidence or 'none'} "
            f"| **{row.result.value}**<br>{_md(row.explanation)} |"
        )
    out.append("")

    out += ["## Gaps", ""]
    open_gaps = _open_gaps(report)
    out += ["### Requirements without passing evidence", ""]
    out += [f"- **{_md(r.requirement.id)}** ({r.result.value}): {_md(r.explanation)}"
            for r in open_gaps] or ["None."]
    out.append("")
    for heading, result in (("Planned", Result.PLANNED), ("Out of scope", Result.OUT_OF_SCOPE)):
        out += [f"### {heading}", ""]
        out += [
            f"- **{_md(r.requirement.id)}** ({_md(r.requirement.source)}): {_md(r.explanation)}"
            for r in _declared_gaps(report)
            if r.result is result
        ] or ["None."]
        out.append("")

    if report.untraced:
        out += ["## Scenarios not traced to a requirement", ""]
        out += [f"- {s.outcome.value}: `{_md(s.location)}` {_md(s.title)}" for s in report.untraced]
        out.append("")

    failures = [s for s in report.scenarios if s.outcome is Outcome.FAILED]
    if failures:
        out += ["## Failures", ""]
        for scenario in failures:
            out += [f"### `{_md(scenario.location)}` {_md(scenario.title)}", ""]
            # A fence longer than any backtick run inside keeps the message verbatim.
            fence = "`" * max(3, _longest_backtick_run(scenario.message or "") + 1)
            out += [fence, scenario.message or "(no message)", fence, ""]

    if report.problems:
        out += ["## Problems with the suite", ""]
        out += [f"- {_md(p)}" for p in report.problems]
        out.append("")

    out += ["## Environment", ""]
    for heading, packages in (
        ("Installed dependencies of capa", report.environment.dependencies),
        ("Test tooling", report.environment.tooling),
    ):
        out += [f"### {heading}", "", "| Package | Version |", "|---|---|"]
        out += [f"| {_md(p.name)} | {_md(p.version)} |" for p in packages]
        out.append("")

    out += ["---", "", _FOOTER, ""]
    return "\n".join(out)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #bbb; padding-bottom: .2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; width: 100%; margin: .6em 0; }
th, td { border: 1px solid #bbb; padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
table.facts { width: auto; }
table.facts th { font-weight: 600; white-space: nowrap; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: .6em; white-space: pre-wrap;
      word-break: break-word; }
ul.evidence { margin: 0; padding-left: 1.1em; }
.id { font-weight: 600; white-space: nowrap; }
.source, .note, .why { color: #444; font-size: .9em; }
.badge { display: inline-block; font-weight: 700; padding: .05em .4em; border-radius: 3px;
         border: 1px solid currentColor; white-space: nowrap; }
.PASS, .passed { color: #0a6b2b; }
.FAIL, .failed { color: #b00020; }
.GAP, .skipped, .no-result { color: #8a5a00; }
.PLANNED, .OUT-OF-SCOPE { color: #444; }
.verdict { font-size: 1.2em; padding: .6em .8em; border: 2px solid currentColor; margin: 1em 0; }
footer { margin-top: 2em; color: #444; font-size: .9em; }
@media print {
  body { font-size: 9.5pt; max-width: none; margin: 0; padding: 0; }
  @page { size: A4; margin: 15mm 12mm; }
  h2 { break-after: avoid; }
  tr, li, pre { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: none; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _css_class(value: str) -> str:
    return value.replace(" ", "-")


def _badge(value: str) -> str:
    return f'<span class="badge {_h(_css_class(value))}">{_h(value)}</span>'


def _scenario_html(scenario: ScenarioResult) -> str:
    return (
        f"<li>{_badge(scenario.outcome.value)} <code>{_h(scenario.location)}</code> "
        f"{_h(scenario.title)}</li>"
    )


def _packages_html(packages: Sequence[Package]) -> list[str]:
    out = ["<table><thead><tr><th>Package</th><th>Version</th></tr></thead><tbody>"]
    out += [f"<tr><td>{_h(p.name)}</td><td>{_h(p.version)}</td></tr>" for p in packages]
    out.append("</tbody></table>")
    return out


def render_html(report: ValidationReport) -> str:
    verdict = report.verdict.value
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>capa validation report — {_h(verdict)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>capa validation report</h1>",
        f'<p class="verdict {_h(verdict)}"><strong>Verdict: {_h(verdict)}</strong>. '
        f"{_h(_verdict_text(report))}</p>",
        '<table class="facts"><tbody>',
    ]
    out += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in _facts(report)]
    out += ["</tbody></table>", f"<p>{_h(_summary(report))}</p>"]

    out += [
        "<h2>Traceability matrix</h2>",
        "<table><thead><tr><th>Requirement</th><th>Statement</th><th>Scenarios</th>"
        "<th>Result</th></tr></thead><tbody>",
    ]
    for row in report.rows:
        req = row.requirement
        note = f'<div class="note">Firm: {_h(req.note)}</div>' if req.note else ""
        evidence = (
            '<ul class="evidence">' + "".join(_scenario_html(s) for s in row.scenarios) + "</ul>"
            if row.scenarios
            else "none"
        )
        out.append(
            f'<tr id="{_h(req.id)}"><td><div class="id">{_h(req.id)}</div>'
            f'<div class="source">{_h(req.source)}</div></td>'
            f"<td>{_h(req.statement)}{note}</td><td>{evidence}</td>"
            f'<td>{_badge(row.result.value)}<div class="why">{_h(row.explanation)}</div></td></tr>'
        )
    out.append("</tbody></table>")

    out += ["<h2>Gaps</h2>", "<h3>Requirements without passing evidence</h3>"]
    open_gaps = _open_gaps(report)
    if open_gaps:
        out.append("<ul>")
        out += [
            f"<li><strong>{_h(r.requirement.id)}</strong> {_badge(r.result.value)} "
            f"{_h(r.explanation)}</li>"
            for r in open_gaps
        ]
        out.append("</ul>")
    else:
        out.append("<p>None.</p>")
    for heading, result in (("Planned", Result.PLANNED), ("Out of scope", Result.OUT_OF_SCOPE)):
        rows = [r for r in _declared_gaps(report) if r.result is result]
        out.append(f"<h3>{_h(heading)}</h3>")
        if not rows:
            out.append("<p>None.</p>")
            continue
        out.append("<ul>")
        out += [
            f"<li><strong>{_h(r.requirement.id)}</strong> "
            f'<span class="source">({_h(r.requirement.source)})</span>: {_h(r.explanation)}</li>'
            for r in rows
        ]
        out.append("</ul>")

    if report.untraced:
        out += ["<h2>Scenarios not traced to a requirement</h2>", "<ul>"]
        out += [_scenario_html(s) for s in report.untraced]
        out.append("</ul>")

    failures = [s for s in report.scenarios if s.outcome is Outcome.FAILED]
    if failures:
        out.append("<h2>Failures</h2>")
        for scenario in failures:
            out += [
                f"<h3><code>{_h(scenario.location)}</code> {_h(scenario.title)}</h3>",
                f"<pre>{_h(scenario.message or '(no message)')}</pre>",
            ]

    if report.problems:
        out += ["<h2>Problems with the suite</h2>", "<ul>"]
        out += [f"<li>{_h(p)}</li>" for p in report.problems]
        out.append("</ul>")

    out += ["<h2>Environment</h2>", "<h3>Installed dependencies of capa</h3>"]
    out += _packages_html(report.environment.dependencies)
    out.append("<h3>Test tooling</h3>")
    out += _packages_html(report.environment.tooling)
    out += [f"<footer>{_h(_FOOTER)}</footer>", "</body></html>", ""]
    return "\n".join(out)


# --- writing ------------------------------------------------------------------------------------


class WrittenFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str


def write_file(path: Path, content: bytes) -> WrittenFile:
    path.write_bytes(content)
    return WrittenFile(path=path, sha256=hashlib.sha256(content).hexdigest())


def write_reports(report: ValidationReport, out_dir: Path) -> tuple[WrittenFile, ...]:
    """Write the HTML and Markdown reports; each comes back with the SHA-256 of its bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return (
        write_file(out_dir / HTML_NAME, render_html(report).encode("utf-8")),
        write_file(out_dir / MARKDOWN_NAME, render_markdown(report).encode("utf-8")),
    )

