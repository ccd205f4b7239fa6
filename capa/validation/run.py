"""Run the Gherkin suite on this build and machine, and write the validation report."""

from __future__ import annotations

import importlib.util
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

import capa
from capa.validation.catalogue import Catalogue, load_catalogue
from capa.validation.cucumber import parse_cucumber
from capa.validation.features import FeatureFileError, FeatureSpec, read_features, unknown_tags
from capa.validation.render import WrittenFile, write_file, write_reports
from capa.validation.report import (
    Environment,
    EvidenceFile,
    Package,
    ReportError,
    ScenarioResult,
    ValidationReport,
    build_report,
)

RAW_RESULTS_NAME = "validation-report.cucumber.json"

SUITE_MISSING = (
    "the validation suite ships with the source distribution: unpack it, install it with "
    "`pip install -e '.[test]'` and run `make validate` there"
)
TOOLS_MISSING = "the validation suite needs the test tools: pip install 'capa[test]'"

_TOOLING = ("pytest", "pytest-bdd", "gherkin-official")
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class SuiteUnavailable(Exception):
    """The validation suite, or the tools to run it, are not installed here."""


class ValidationRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    report: ValidationReport
    files: tuple[WrittenFile, ...]


def locate_suite() -> Path:
    """The source tree holding features/ and tests/bdd/ next to the running capa package."""
    root = Path(capa.__file__).resolve().parent.parent
    if not (root / "features").is_dir() or not (root / "tests" / "bdd").is_dir():
        raise SuiteUnavailable(SUITE_MISSING)
    if any(importlib.util.find_spec(module) is None for module in ("pytest", "pytest_bdd")):
        raise SuiteUnavailable(TOOLS_MISSING)
    return root


def run_gherkin_suite(root: Path, cucumber_json: Path, echo: Callable[[str], None]) -> int:
    """Run `pytest tests/bdd` in `root` with the running interpreter; returns its exit status."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/bdd",
        f"--cucumberjson={cucumber_json}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    with subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            echo(line.rstrip("\n"))
    return process.returncode


# --- environment --------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_requirement(spec: str) -> tuple[str, bool] | None:
    """(name, conditional) of a dependency specifier, or None if only an extra needs it."""
    requirement, _, marker = spec.partition(";")
    if "extra" in marker:
        return None
    match = _REQUIREMENT_NAME.match(requirement)
    return (match.group(1), bool(marker.strip())) if match else None


def _capa_requirements(root: Path | None) -> list[str]:
    try:
        return metadata.requires("capa") or []
    except metadata.PackageNotFoundError:
        pass
    # Running from a source tree that was never pip-installed: its pyproject says the same.
    if root is not None and (root / "pyproject.toml").is_file():
        project = tomllib.loads((root / "pyproject.toml").read_text("utf-8")).get("project", {})
        return [str(spec) for spec in project.get("dependencies", [])]
    return []


def installed_packages(requirements: Iterable[str], *, transitive: bool = True) -> list[Package]:
    """Installed versions of the given requirements (and theirs, when transitive)."""
    found: dict[str, Package] = {}
    pending = [parsed for spec in requirements if (parsed := _parse_requirement(spec))]
    while pending:
        name, conditional = pending.pop()
        if _normalise(name) in found:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            # A dependency under an environment marker may rightly be absent on this platform.
            if not conditional:
                found[_normalise(name)] = Package(name=name, version="not installed")
            continue
        found[_normalise(name)] = Package(
            name=distribution.metadata["Name"] or name, version=distribution.version
        )
        if transitive:
            for spec in distribution.requires or []:
                if parsed := _parse_requirement(spec):
                    pending.append(parsed)
    return sorted(found.values(), key=lambda package: _normalise(package.name))


def git_commit(root: Path) -> str:
    """HEAD of the git checkout at `root`, flagged when the working tree differs from it."""
    try:
        top, head = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, ValueError, subprocess.SubprocessError):
        return "not a git checkout"
    # A source tree unpacked inside some other repository is not a checkout of capa.
    if Path(top).resolve() != root.resolve():
        return "not a git checkout"
    return f"{head} (with uncommitted changes)" if status.strip() else head


def collect_environment(root: Path | None) -> Environment:
    return Environment(
        capa_version=capa.__version__,
        git_commit=git_commit(root) if root is not None else "not a git checkout",
        python=f"{platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.executable})",
        platform=platform.platform(),
        host=platform.node() or "unknown",
        dependencies=tuple(installed_packages(_capa_requirements(root))),
        tooling=tuple(installed_packages(_TOOLING, transitive=False)),
    )


# --- the run ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def validate(
    out_dir: Path,
    echo: Callable[[str], None],
    *,
    root: Path | None = None,
    catalogue: Catalogue | None = None,
) -> ValidationRun:
    """Run the suite, then write the raw results and both reports into `out_dir`."""
    root = locate_suite() if root is None else root
    catalogue = load_catalogue() if catalogue is None else catalogue
    problems: list[str] = []

    started_at = _now()
    with tempfile.TemporaryDirectory() as tmp:
        cucumber_json = Path(tmp) / "cucumber.json"
        exit_code = run_gherkin_suite(root, cucumber_json, echo)
        finished_at = _now()
        raw = cucumber_json.read_bytes() if cucumber_json.is_file() else None

    results: tuple[ScenarioResult, ...] = ()
    if raw is None:
        problems.append("the Gherkin suite wrote no results")
    else:
        try:
            results = parse_cucumber(raw.decode("utf-8"))
        except (ReportError, UnicodeDecodeError) as error:
            problems.append(str(error))

    features: tuple[FeatureSpec, ...] | None
    try:
        features = read_features(root / "features")
    except FeatureFileError as error:
        features = None
        problems.append(str(error))
    else:
        problems += unknown_tags(catalogue, features)

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[WrittenFile] = []
    raw_results = None
    if raw is not None:
        raw_file = write_file(out_dir / RAW_RESULTS_NAME, raw)
        written.append(raw_file)
        raw_results = EvidenceFile(name=RAW_RESULTS_NAME, sha256=raw_file.sha256)

    report = build_report(
        catalogue=catalogue,
        results=results,
        features=features,
        environment=collect_environment(root),
        started_at=started_at,
        finished_at=finished_at,
        suite_exit_code=exit_code,
        problems=problems,
        raw_results=raw_results,
    )
    written += write_reports(report, out_dir)
    return ValidationRun(report=report, files=tuple(written))
