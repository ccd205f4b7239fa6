"""`capa validate`: run the executable validation suite and write the traceability report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from capa.cli.output import emit
from capa.validation import run
from capa.validation.catalogue import CatalogueError
from capa.validation.report import Outcome, Result, Verdict


class SuiteUnavailable(click.ClickException):
    """Usage-level failure: there is nothing here to validate with."""

    exit_code = 2


def _human(data: dict[str, Any]) -> str:
    requirements = ", ".join(f"{n} {name}" for name, n in data["requirements"].items())
    scenarios = ", ".join(f"{n} {name}" for name, n in data["scenarios"].items())
    lines = [
        f"Verdict: {data['verdict']}",
        f"Requirements: {requirements}",
        f"Scenarios: {scenarios}",
        *(f"  - {reason}" for reason in data["reasons"]),
        "Files written (SHA-256):",
        # sha256sum's own format, so that `sha256sum -c` can check the files later.
        *(f"{file['sha256']}  {file['path']}" for file in data["files"]),
    ]
    return "\n".join(lines)


@click.command("validate")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write validation-report.html, validation-report.md and the raw results.",
)
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")
def validate(out_dir: Path, as_json: bool) -> None:
    """Run the validation suite on this build and write the traceability report.

    Executes every Gherkin scenario of the source distribution with this installation of capa,
    then writes validation-report.html and validation-report.md: the environment, each
    requirement with the scenarios that prove it and their results, the gaps, and the verdict.
    The SHA-256 of every file written is printed last. Exit status 0 when the verdict is PASS,
    1 when it is FAIL, 2 when the suite is not available here.

    \b
    Example:
      capa validate --out-dir validation/2026-06-01
    """
    root_obj = click.get_current_context().find_root().obj
    as_json = as_json or bool(getattr(root_obj, "json", False))
    try:
        validation = run.validate(out_dir, echo=lambda line: click.echo(line, err=True))
    except (run.SuiteUnavailable, CatalogueError) as error:
        raise SuiteUnavailable(str(error)) from error
    report = validation.report
    data = {
        "verdict": report.verdict.value,
        "reasons": list(report.verdict_reasons),
        "requirements": {result.value.lower(): report.count(result) for result in Result},
        "scenarios": {outcome.value: report.count_outcome(outcome) for outcome in Outcome},
        "files": [{"path": str(f.path), "sha256": f.sha256} for f in validation.files],
    }
    emit(as_json, data, _human)
    if report.verdict is not Verdict.PASS:
        click.get_current_context().exit(1)
