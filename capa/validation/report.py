"""Build the traceability report from a suite's cucumber JSON and render it as Markdown and HTML."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from capa.validation.catalogue import Catalogue, Requirement, Status
from capa.validation.features import FeatureSpec

HTML_NAME = "validation-report.html"
MARKDOWN_NAME = "validation-report.md"

# A failure's message is pytest's whole traceback; its tail holds the assertion that failed.
_MESSAGE_TAIL_LINES = 40


class ReportError(Exception):
    """The suite's results cannot be read."""


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_RUN = "no result"


class Result(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    GAP = "GAP"
    PLANNED = "PLANNED"
    OUT_OF_SCOPE = "OUT OF SCOPE"


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"


class ScenarioResult(BaseModel):
    """One executed (or expected but unexecuted) scenario.

    A scenario the suite runs once per back end (test ids ending in `[sqlite]`, `[postgres]`)
    is one result: failed if it failed on any back end, passed if it passed on every back end
    it ran on (`back_ends`), skipped if it ran on none. `skipped_on` names the back ends it
    was skipped on, with the reason in `message` when nothing failed."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    name: str
    tags: frozenset[str]
    outcome: Outcome
    message: str | None = None
    back_ends: tuple[str, ...] = ()
    skipped_on: tuple[str, ...] = ()
    #: The test id without its back end (`test_x[tokafor-allowed]`): the runs of one scenario,
    #: or of one example of an outline, on the different back ends share it. Empty when the
    #: test id names no back end.
    run_of: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def title(self) -> str:
        """The name, and the back ends it ran (and did not run) on when the suite said."""
        notes = []
        if self.back_ends:
            notes.append("on " + ", ".join(self.back_ends))
        if self.skipped_on:
            notes.append("skipped on " + ", ".join(self.skipped_on))
        return f"{self.name} ({'; '.join(notes)})" if notes else self.name


class RequirementRow(BaseModel):
    """A requirement, the scenarios traced to it, and what they show."""

    model_config = ConfigDict(frozen=True)

    requirement: Requirement
    scenarios: tuple[ScenarioResult, ...]
    result: Result
    explanation: str


class Package(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str


class Environment(BaseModel):
    """What was validated, and where."""

    model_config = ConfigDict(frozen=True)

    capa_version: str
    git_commit: str
    python: str
    platform: str
    host: str
    dependencies: tuple[Package, ...]
    tooling: tuple[Package, ...]


class EvidenceFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    started_at: datetime
    finished_at: datetime
    environment: Environment
    rows: tuple[RequirementRow, ...]
    scenarios: tuple[ScenarioResult, ...]
    untraced: tuple[ScenarioResult, ...]
    suite_exit_code: int | None
    problems: tuple[str, ...]
    raw_results: EvidenceFile | None
    verdict: Verdict
    verdict_reasons: tuple[str, ...]

    def count(self, result: Result) -> int:
        return sum(1 for row in self.rows if row.result is result)

    def count_outcome(self, outcome: Outcome) -> int:
        return sum(1 for scenario in self.scenarios if scenario.outcome is outcome)


# --- reading the suite's results ----------------------------------------------------------------


class _CucumberTag(BaseModel):
    name: str


class _CucumberStepResult(BaseModel):
    status: str
    error_message: str | None = None


class _CucumberStep(BaseModel):
    result: _CucumberStepResult


class _CucumberElement(BaseModel):
    id: str = ""
    name: str
    line: int
    tags: list[_CucumberTag] = []
    steps: list[_CucumberStep] = []


class _CucumberFeature(BaseModel):
    uri: str
    tags: list[_CucumberTag] = []
    elements: list[_CucumberElement] = []


_CUCUMBER = TypeAdapter(list[_CucumberFeature])
#: The store back ends a scenario may run on; its test id names one among its parameters
#: (`test_x[sqlite]`, `test_x[postgres-tokafor-allowed]`).
BACK_ENDS = ("sqlite", "postgres")
_PARAMETERS = re.compile(r"\[([^\[\]]+)\]$")


def _back_end(test_id: str) -> tuple[str | None, str]:
    """The back end a test id names, and the id without it."""
    found = _PARAMETERS.search(test_id)
    if found is None:
        return None, test_id
    parts = found.group(1).split("-")
    named = [part for part in parts if part in BACK_ENDS]
    if len(named) != 1:
        return None, test_id
    rest = "-".join(part for part in parts if part not in BACK_ENDS)
    base = test_id[: found.start()]
    return named[0], f"{base}[{rest}]" if rest else base


def _tail(message: str) -> str:
    return "\n".join(message.strip().splitlines()[-_MESSAGE_TAIL_LINES:])


def _outcome(steps: Sequence[_CucumberStep]) -> tuple[Outcome, str | None]:
    statuses = [step.result.status for step in steps]
    if "failed" in statuses:
        messages = [s.result.error_message for s in steps if s.result.error_message]
        return Outcome.FAILED, _tail(messages[0]) if messages else None
    if statuses and all(status == "passed" for status in statuses):
        return Outcome.PASSED, None
    return Outcome.SKIPPED, None


def parse_cucumber(text: str) -> tuple[ScenarioResult, ...]:
    """The scenarios in a cucumber JSON document, as written by pytest-bdd's --cucumberjson."""
    try:
        features = _CUCUMBER.validate_json(text)
    except ValidationError as error:
        raise ReportError(f"unreadable cucumber JSON: {error}") from error
    results = []
    for feature in features:
        feature_tags = {tag.name.lstrip("@") for tag in feature.tags}
        for element in feature.elements:
            outcome, message = _outcome(element.steps)
            named, run_of = _back_end(element.id)
            back_end = (named,) if named else ()
            results.append(
                ScenarioResult(
                    path=feature.uri,
                    line=element.line,
                    name=element.name,
                    tags=frozenset(feature_tags | {tag.name.lstrip("@") for tag in element.tags}),
                    outcome=outcome,
                    message=message,
                    back_ends=back_end if outcome is not Outcome.SKIPPED else (),
                    skipped_on=back_end if outcome is Outcome.SKIPPED else (),
                    run_of=run_of if named else "",
                )
            )
    return tuple(results)


def _combine(runs: Sequence[ScenarioResult]) -> ScenarioResult:
    """One scenario's runs on several back ends as one result: failed if any run failed, passed
    if every run that was not skipped passed, skipped if all were."""
    if len(runs) == 1:
        return runs[0]
    outcomes = [run.outcome for run in runs]
    failed = [run for run in runs if run.outcome is Outcome.FAILED]
    if failed:
        outcome = Outcome.FAILED
        message = "\n\n".join(
            f"[{', '.join(run.back_ends) or 'run'}] {run.message or '(no message)'}"
            for run in failed
        )
    elif Outcome.PASSED in outcomes and all(
        o in (Outcome.PASSED, Outcome.SKIPPED) for o in outcomes
    ):
        outcome, message = Outcome.PASSED, None
    else:
        outcome, message = Outcome.SKIPPED, None
    return runs[0].model_copy(
        update={
            "outcome": outcome,
            "message": message,
            "tags": frozenset().union(*(run.tags for run in runs)),
            "back_ends": tuple(b for run in runs for b in run.back_ends),
            "skipped_on": tuple(b for run in runs for b in run.skipped_on),
        }
    )


# --- building the report ------------------------------------------------------------------------


def _match_path(uri: str, known: Iterable[str]) -> str:
    """The feature file a result names; pytest-bdd's uri depends on how scenarios were bound."""
    candidates = [
        path
        for path in known
        if uri == path or uri.endswith("/" + path) or path.endswith("/" + uri)
    ]
    if uri in candidates:
        return uri
    return max(candidates, key=len) if candidates else uri


def _merge(
    results: Sequence[ScenarioResult], features: Sequence[FeatureSpec] | None
) -> list[ScenarioResult]:
    """Results joined to the scenarios as written: full tags, and scenarios that never ran."""
    if features is None:
        return _by_scenario(results)
    written = {(s.path, s.line): s for f in features for s in f.scenarios}
    paths = {f.path for f in features}
    located = []
    ran: set[tuple[str, int]] = set()
    for result in results:
        path = _match_path(result.path, paths)
        spec = written.get((path, result.line))
        tags = result.tags | spec.tags if spec else result.tags
        located.append(result.model_copy(update={"path": path, "tags": tags}))
        ran.add((path, result.line))
    merged = _by_scenario(located)
    for key, spec in written.items():
        if key not in ran:
            merged.append(
                ScenarioResult(
                    path=spec.path,
                    line=spec.line,
                    name=spec.name,
                    tags=spec.tags,
                    outcome=Outcome.NOT_RUN,
                )
            )
    return merged


def _by_scenario(results: Sequence[ScenarioResult]) -> list[ScenarioResult]:
    """The runs of each scenario (each example of an outline) on every back end, combined."""
    runs: dict[object, list[ScenarioResult]] = {}
    for index, result in enumerate(results):
        key = (result.path, result.line, result.run_of) if result.run_of else index
        runs.setdefault(key, []).append(result)
    return [_combine(each) for each in runs.values()]


def _row(requirement: Requirement, scenarios: Sequence[ScenarioResult]) -> RequirementRow:
    outcomes = [s.outcome for s in scenarios]
    tally = ", ".join(f"{outcomes.count(o)} {o.value}" for o in Outcome if o in outcomes)
    if requirement.out_of_scope is not None:
        result, why = Result.OUT_OF_SCOPE, requirement.out_of_scope
    elif requirement.status is Status.PLANNED:
        result, why = Result.PLANNED, requirement.reason or ""
    elif not scenarios:
        result, why = Result.GAP, f"no scenario is tagged {requirement.tag}"
    elif Outcome.FAILED in outcomes:
        result, why = Result.FAIL, tally
    elif all(outcome is Outcome.PASSED for outcome in outcomes):
        result, why = Result.PASS, tally
    else:
        # A skipped scenario, or one without a result, is a claim without evidence, even beside
        # passing ones.
        result, why = Result.GAP, tally
    return RequirementRow(
        requirement=requirement, scenarios=tuple(scenarios), result=result, explanation=why
    )


def _sort_key(scenario: ScenarioResult) -> tuple[str, int, str]:
    return (scenario.path, scenario.line, scenario.name)


def build_report(
    *,
    catalogue: Catalogue,
    results: Sequence[ScenarioResult],
    features: Sequence[FeatureSpec] | None,
    environment: Environment,
    started_at: datetime,
    finished_at: datetime,
    suite_exit_code: int | None,
    problems: Sequence[str] = (),
    raw_results: EvidenceFile | None = None,
) -> ValidationReport:
    """Trace every result to the requirements its tags name, and decide the verdict.

    `features` (the scenarios as written) lets scenarios that never ran show up as gaps;
    without it only the results are traced.
    """
    scenarios = sorted(_merge(results, features), key=_sort_key)
    ids = {r.id for r in catalogue.requirements}
    rows = tuple(
        _row(requirement, [s for s in scenarios if requirement.id in s.tags])
        for requirement in catalogue.requirements
    )
    untraced = tuple(s for s in scenarios if not s.tags & ids)
    failed_rows = [row.requirement.id for row in rows if row.result is Result.FAIL]
    gap_rows = [row.requirement.id for row in rows if row.result is Result.GAP]
    failed_scenarios = sum(1 for s in scenarios if s.outcome is Outcome.FAILED)
    reasons = []
    if failed_rows:
        reasons.append(f"requirements with a failing scenario: {', '.join(failed_rows)}")
    if gap_rows:
        reasons.append(f"requirements without complete passing evidence: {', '.join(gap_rows)}")
    if failed_scenarios:
        reasons.append(f"{failed_scenarios} scenario(s) failed")
    if suite_exit_code is None:
        reasons.append("the Gherkin suite did not report an exit status")
    elif suite_exit_code != 0:
        reasons.append(f"the Gherkin suite exited with status {suite_exit_code}")
    reasons.extend(problems)
    return ValidationReport(
        started_at=started_at,
        finished_at=finished_at,
        environment=environment,
        rows=rows,
        scenarios=tuple(scenarios),
        untraced=untraced,
        suite_exit_code=suite_exit_code,
        problems=tuple(problems),
        raw_results=raw_results,
        verdict=Verdict.FAIL if reasons else Verdict.PASS,
        verdict_reasons=tuple(reasons),
    )


# --- rendering ----------------------------------------------------------------------------------


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

