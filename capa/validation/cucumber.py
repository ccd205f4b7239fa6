"""Reading a suite's results: pytest-bdd's cucumber JSON, one result per scenario run."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, TypeAdapter, ValidationError

from capa.validation.report import Outcome, ReportError, ScenarioResult

__all__ = ["BACK_ENDS", "parse_cucumber"]

# A failure's message is pytest's whole traceback; its tail holds the assertion that failed.
_MESSAGE_TAIL_LINES = 40


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
