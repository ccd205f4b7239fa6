"""The traceability report of a validation run: requirements, scenarios and their outcomes.

The suite's results are read by capa.validation.cucumber; the report is rendered and written by
capa.validation.render.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from capa.validation.catalogue import Catalogue, Requirement, Status
from capa.validation.features import FeatureSpec


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
