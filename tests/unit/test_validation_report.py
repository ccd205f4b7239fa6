"""The validation report: tracing cucumber results to requirements, rendering, and its digests."""

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import capa
from capa.cli.validate import validate
from capa.validation import run
from capa.validation.catalogue import Catalogue, parse_catalogue
from capa.validation.cucumber import parse_cucumber
from capa.validation.features import parse_feature
from capa.validation.render import (
    HTML_NAME,
    MARKDOWN_NAME,
    render_html,
    render_markdown,
    write_reports,
)
from capa.validation.report import (
    Environment,
    Outcome,
    Package,
    Result,
    ValidationReport,
    Verdict,
    build_report,
)

CATALOGUE = parse_catalogue(
    """
extra_tags = ["cli"]

[[requirement]]
id = "R1"
framework = "capa rule"
source = "ISO 9001:2015 10.2.1 b"
statement = "An NC judged to need no CA carries a rationale."

[[requirement]]
id = "R2"
framework = "capa rule"
source = "21 CFR 11.10(g)"
statement = "The approver is not the owner."

[[requirement]]
id = "R3"
framework = "capa rule"
source = "ISO 9001:2015 10.2.1 d"
statement = "Effectiveness is verified independently."

[[requirement]]
id = "R4"
framework = "capa rule"
source = "ISO 9001:2015 10.2.2 b"
statement = "A CA closes after verification."

[[requirement]]
id = "X1"
framework = "FDA QSIT"
source = "QSIT CAPA objective 10"
statement = "Management review."
out_of_scope = "Management review is the firm's <own> process."

[[requirement]]
id = "P1"
framework = "FDA QSIT"
source = "QSIT CAPA objective 3"
statement = "Trends are analysed."
status = "planned"
reason = "The dashboard is not built yet."
"""
)

HOSTILE_NAME = 'Rationale <script>alert("x")</script> & | pipes'


def _step(status: str, message: str | None = None) -> dict[str, object]:
    result: dict[str, object] = {"status": status, "duration": 1000}
    if message is not None:
        result["error_message"] = message
    return {"keyword": "Given", "name": "a step", "line": 1, "match": {"location": ""},
            "result": result}


def _element(name: str, line: int, tags: list[str], *steps: dict[str, object]) -> dict[str, object]:
    return {"keyword": "Scenario", "id": name, "name": name, "line": line, "description": "",
            "type": "scenario", "tags": [{"name": t, "line": line - 1} for t in tags],
            "steps": list(steps)}


def _feature(uri: str, tags: list[str], *elements: dict[str, object]) -> dict[str, object]:
    return {"keyword": "Feature", "uri": uri, "name": uri, "id": uri, "line": 1,
            "description": "", "language": "en",
            "tags": [{"name": t, "line": 1} for t in tags], "elements": list(elements)}


CUCUMBER = json.dumps([
    _feature(
        "features/rules/approval.feature",
        ["R1"],
        _element("Owner approves their own plan", 5, ["R2"], _step("passed"), _step("passed")),
        _element(HOSTILE_NAME, 10, [], _step("passed"),
                 _step("failed", "Traceback\n" + "noise\n" * 50 + "AssertionError: <b>no</b>")),
    ),
    _feature(
        "nc/raise.feature",
        [],
        _element("Raise an NC", 3, [], _step("passed")),
        _element("Raise from the command line", 8, ["cli"], _step("passed"), _step("skipped")),
    ),
])

# The scenarios as written: the rule's @R4 tag is not in pytest-bdd's results, and the last
# scenario was never bound to a test.
APPROVAL_FEATURE = """@R1
Feature: Approval

  @R2
  Scenario: Owner approves their own plan
    Given a step

  @R4
  Rule: closing
    Scenario: Rationale
      Given a step

    Scenario: Closing after verification
      Given a step
"""

ENVIRONMENT = Environment(
    capa_version="9.9.9",
    git_commit="not a git checkout",
    python="3.11.7 (CPython, /usr/bin/python3)",
    platform="Linux-test",
    host="qa-bench-01",
    dependencies=(Package(name="click", version="8.1.7"), Package(name="pydantic", version="2.7")),
    tooling=(Package(name="pytest-bdd", version="9.0.1"),),
)

STARTED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
FINISHED = datetime(2026, 3, 1, 9, 31, 5, tzinfo=UTC)


def _only(*ids: str) -> Catalogue:
    return CATALOGUE.model_copy(
        update={"requirements": tuple(r for r in CATALOGUE.requirements if r.id in ids)}
    )


def _report(
    cucumber: str = CUCUMBER,
    *,
    catalogue: Catalogue = CATALOGUE,
    exit_code: int | None = 1,
    with_features: bool = False,
) -> ValidationReport:
    features = None
    if with_features:
        spec = parse_feature(APPROVAL_FEATURE, "rules/approval.feature")
        assert spec is not None
        features = [spec]
    return build_report(
        catalogue=catalogue,
        results=parse_cucumber(cucumber),
        features=features,
        environment=ENVIRONMENT,
        started_at=STARTED,
        finished_at=FINISHED,
        suite_exit_code=exit_code,
    )


def _results(report: ValidationReport) -> dict[str, Result]:
    return {row.requirement.id: row.result for row in report.rows}


# --- reading results ----------------------------------------------------------------------------


def test_cucumber_results_carry_feature_and_scenario_tags() -> None:
    results = {r.name: r for r in parse_cucumber(CUCUMBER)}
    assert results["Owner approves their own plan"].tags == {"R1", "R2"}
    assert results["Owner approves their own plan"].outcome is Outcome.PASSED
    assert results[HOSTILE_NAME].outcome is Outcome.FAILED
    assert results["Raise from the command line"].outcome is Outcome.SKIPPED
    assert results["Raise an NC"].location == "nc/raise.feature:3"


def test_failure_message_keeps_the_tail_where_the_assertion_is() -> None:
    message = {r.name: r for r in parse_cucumber(CUCUMBER)}[HOSTILE_NAME].message
    assert message is not None
    assert message.endswith("AssertionError: <b>no</b>")
    assert "Traceback" not in message


def test_each_example_of_an_outline_counts() -> None:
    example = _element("Outline", 5, ["R2"], _step("passed"))
    report = _report(json.dumps([_feature("o.feature", [], example, example)]), exit_code=0)
    assert report.count_outcome(Outcome.PASSED) == 2
    assert len(next(row for row in report.rows if row.requirement.id == "R2").scenarios) == 2


def _run(test_id: str, name: str, line: int, status: str) -> dict[str, object]:
    element = _element(name, line, ["R2"], _step("passed"),
                       _step(status, "AssertionError: on this back end" if status == "failed"
                             else None))
    return {**element, "id": test_id}


def test_a_scenario_run_on_each_back_end_is_one_result_that_passes_only_on_both() -> None:
    both = [_run("test_a[sqlite]", "A", 5, "passed"), _run("test_a[postgres]", "A", 5, "passed")]
    report = _report(json.dumps([_feature("o.feature", [], *both)]), exit_code=0)
    [scenario] = report.scenarios
    assert (scenario.outcome, scenario.back_ends) == (Outcome.PASSED, ("sqlite", "postgres"))
    assert scenario.title == "A (on sqlite, postgres)"
    assert _results(report)["R2"] is Result.PASS

    one_fails = [_run("test_a[sqlite]", "A", 5, "passed"),
                 _run("test_a[postgres]", "A", 5, "failed")]
    report = _report(json.dumps([_feature("o.feature", [], *one_fails)]), exit_code=1)
    [scenario] = report.scenarios
    assert scenario.outcome is Outcome.FAILED
    assert scenario.message is not None and scenario.message.startswith("[postgres] ")
    assert _results(report)["R2"] is Result.FAIL
    assert report.count_outcome(Outcome.FAILED) == 1


def test_a_back_end_that_could_not_run_is_named_and_the_others_decide() -> None:
    runs = [_run("test_a[sqlite]", "A", 5, "passed"), _run("test_a[postgres]", "A", 5, "skipped")]
    report = _report(json.dumps([_feature("o.feature", [], *runs)]), exit_code=0)
    [scenario] = report.scenarios
    assert (scenario.outcome, scenario.back_ends, scenario.skipped_on) == (
        Outcome.PASSED, ("sqlite",), ("postgres",))
    assert scenario.title == "A (on sqlite; skipped on postgres)"
    nowhere = [_run("test_a[sqlite]", "A", 5, "skipped"),
               _run("test_a[postgres]", "A", 5, "skipped")]
    report = _report(json.dumps([_feature("o.feature", [], *nowhere)]), exit_code=0)
    assert [s.outcome for s in report.scenarios] == [Outcome.SKIPPED]
    assert _results(report)["R2"] is Result.GAP


def test_examples_of_an_outline_stay_apart_across_back_ends() -> None:
    runs = [_run(f"test_o[{back_end}-{user}]", f"O {user}", 5, "passed")
            for back_end in ("sqlite", "postgres") for user in ("tokafor", "apatel")]
    report = _report(json.dumps([_feature("o.feature", [], *runs)]), exit_code=0)
    assert sorted((s.name, s.back_ends) for s in report.scenarios) == [
        ("O apatel", ("sqlite", "postgres")), ("O tokafor", ("sqlite", "postgres"))]


def test_an_empty_run_has_no_results() -> None:
    assert parse_cucumber("[]") == ()


# --- tracing and verdict ------------------------------------------------------------------------


def test_requirements_are_pass_fail_gap_planned_or_out_of_scope() -> None:
    report = _report()
    assert _results(report) == {
        "R1": Result.FAIL,
        "R2": Result.PASS,
        "R3": Result.GAP,
        "R4": Result.GAP,
        "X1": Result.OUT_OF_SCOPE,
        "P1": Result.PLANNED,
    }
    explanations = {row.requirement.id: row.explanation for row in report.rows}
    assert explanations["R1"] == "1 passed, 1 failed"
    assert explanations["R3"] == "no scenario is tagged @R3"
    assert [s.name for s in report.untraced] == ["Raise an NC", "Raise from the command line"]
    assert report.verdict is Verdict.FAIL
    assert report.verdict_reasons == (
        "requirements with a failing scenario: R1",
        "requirements without complete passing evidence: R3, R4",
        "1 scenario(s) failed",
        "the Gherkin suite exited with status 1",
    )


def test_scenarios_as_written_add_inherited_tags_and_scenarios_that_never_ran() -> None:
    report = _report(with_features=True)
    rows = {row.requirement.id: row for row in report.rows}
    r4 = rows["R4"]
    assert [(s.location, s.outcome) for s in r4.scenarios] == [
        ("rules/approval.feature:10", Outcome.FAILED),
        ("rules/approval.feature:13", Outcome.NOT_RUN),
    ]
    assert r4.result is Result.FAIL
    assert report.count_outcome(Outcome.NOT_RUN) == 1


def test_a_scenario_that_did_not_run_leaves_a_gap_beside_passing_ones() -> None:
    passing = CUCUMBER.replace('"failed"', '"passed"')
    report = _report(passing, exit_code=0, with_features=True)
    row = next(row for row in report.rows if row.requirement.id == "R4")
    assert row.result is Result.GAP
    assert row.explanation == "1 passed, 1 no result"


def test_verdict_passes_when_every_requirement_needing_evidence_passes() -> None:
    passing = CUCUMBER.replace('"failed"', '"passed"')
    report = _report(passing, catalogue=_only("R2", "X1", "P1"), exit_code=0)
    assert report.verdict is Verdict.PASS
    assert report.verdict_reasons == ()


def test_a_failing_suite_fails_the_verdict_even_when_every_scenario_passed() -> None:
    passing = CUCUMBER.replace('"failed"', '"passed"')
    report = _report(passing, catalogue=_only("R2"), exit_code=3)
    assert report.verdict is Verdict.FAIL
    assert report.verdict_reasons == ("the Gherkin suite exited with status 3",)


# --- rendering ----------------------------------------------------------------------------------


def _html_row(page: str, requirement_id: str) -> str:
    match = re.search(rf'<tr id="{re.escape(requirement_id)}">.*?</tr>', page, re.S)
    assert match, requirement_id
    return match.group(0)


def test_html_matrix_shows_each_result() -> None:
    page = render_html(_report())
    assert 'class="badge FAIL">FAIL<' in _html_row(page, "R1")
    assert 'class="badge PASS">PASS<' in _html_row(page, "R2")
    assert 'class="badge GAP">GAP<' in _html_row(page, "R3")
    assert "no scenario is tagged @R3" in _html_row(page, "R3")
    assert 'class="badge OUT-OF-SCOPE">OUT OF SCOPE<' in _html_row(page, "X1")
    assert 'class="badge PLANNED">PLANNED<' in _html_row(page, "P1")
    assert "<code>features/rules/approval.feature:5</code> Owner approves their own plan" in (
        _html_row(page, "R2")
    )
    assert "Verdict: FAIL" in page


def test_html_escapes_everything_it_did_not_write() -> None:
    page = render_html(_report())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; | pipes" in page
    assert "AssertionError: &lt;b&gt;no&lt;/b&gt;" in page
    assert "the firm&#x27;s &lt;own&gt; process" in page


def test_html_is_self_contained_and_prints() -> None:
    page = render_html(_report())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page
    assert "@media print" in page


def test_html_shows_environment_and_run_time() -> None:
    page = render_html(_report())
    for fact in ("9.9.9", "not a git checkout", "3.11.7 (CPython", "Linux-test", "qa-bench-01",
                 "2026-03-01T09:30:00Z", "2026-03-01T09:31:05Z", "<td>pydantic</td><td>2.7</td>",
                 "<td>pytest-bdd</td><td>9.0.1</td>"):
        assert fact in page


def _md_row(text: str, requirement_id: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {requirement_id} |"))


def test_markdown_matrix_shows_each_result_and_escapes() -> None:
    text = render_markdown(_report())
    assert "**FAIL**" in _md_row(text, "R1")
    assert "**PASS**" in _md_row(text, "R2")
    assert "**GAP**" in _md_row(text, "R3")
    assert "**OUT OF SCOPE**" in _md_row(text, "X1")
    assert "**PLANNED**" in _md_row(text, "P1")
    row = _md_row(text, "R1")
    assert '&lt;script&gt;alert("x")&lt;/script&gt; &amp; \\| pipes' in row
    # Exactly the five columns: escaped pipes do not split cells.
    assert len(re.findall(r"(?<!\\)\|", row)) == 6
    assert "<script>" not in text
    assert "**Verdict: FAIL**" in text
    assert "| Git commit | not a git checkout |" in text


def test_markdown_lists_gaps_with_reasons() -> None:
    text = render_markdown(_report())
    gaps = text[text.index("## Gaps"):]
    assert "- **R3** (GAP): no scenario is tagged @R3" in gaps
    assert "- **P1** (QSIT CAPA objective 3): The dashboard is not built yet." in gaps
    assert "- **X1** (QSIT CAPA objective 10): Management review is the firm's &lt;own&gt;" in gaps


def test_written_reports_carry_the_digest_of_their_bytes(tmp_path: Path) -> None:
    files = write_reports(_report(), tmp_path / "out")
    assert [f.path.name for f in files] == [HTML_NAME, MARKDOWN_NAME]
    for file in files:
        assert file.sha256 == hashlib.sha256(file.path.read_bytes()).hexdigest()


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A source tree whose Gherkin suite 'runs' by writing the synthetic results."""
    root = tmp_path / "src"
    (root / "tests" / "bdd").mkdir(parents=True)
    (root / "features" / "rules").mkdir(parents=True)
    (root / "features" / "rules" / "approval.feature").write_text(APPROVAL_FEATURE)

    def fake_suite(where: Path, cucumber_json: Path, echo: object) -> int:
        assert where == root
        cucumber_json.write_text(CUCUMBER)
        return 1

    monkeypatch.setattr(run, "locate_suite", lambda: root)
    monkeypatch.setattr(run, "run_gherkin_suite", fake_suite)
    monkeypatch.setattr(run, "load_catalogue", lambda: CATALOGUE)
    return root


def test_command_prints_the_digest_of_every_file_it_wrote(suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    result = CliRunner().invoke(validate, ["--out-dir", str(out)])
    assert result.exit_code == 1, result.output
    digests: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if re.fullmatch(r"[0-9a-f]{64}  .+", line):
            digest, path = line.split("  ", 1)
            digests[path] = digest
    assert sorted(Path(p).name for p in digests) == sorted(
        [HTML_NAME, MARKDOWN_NAME, run.RAW_RESULTS_NAME]
    )
    for path, digest in digests.items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    # The digests come last, so a script can take them from the end of the output.
    assert re.fullmatch(r"[0-9a-f]{64}  .+", result.stdout.splitlines()[-1])
    assert result.stdout.startswith("Verdict: FAIL\n")


def test_report_names_the_raw_results_it_was_built_from(suite: Path, tmp_path: Path) -> None:
    CliRunner().invoke(validate, ["--out-dir", str(tmp_path)])
    raw = (tmp_path / run.RAW_RESULTS_NAME).read_bytes()
    page = (tmp_path / HTML_NAME).read_text()
    assert f"{run.RAW_RESULTS_NAME} (SHA-256 {hashlib.sha256(raw).hexdigest()})" in page
    assert "not a git checkout" in page
    assert f"<td>{capa.__version__}</td>" in page


def test_command_json_is_one_document(suite: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(validate, ["--out-dir", str(tmp_path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["verdict"] == "FAIL"
    assert data["requirements"] == {
        "pass": 1, "fail": 2, "gap": 1, "planned": 1, "out of scope": 1
    }
    assert {Path(f["path"]).name for f in data["files"]} == {
        HTML_NAME, MARKDOWN_NAME, run.RAW_RESULTS_NAME
    }


def test_command_without_the_suite_says_where_it_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "site-packages" / "capa" / "__init__.py"
    monkeypatch.setattr(capa, "__file__", str(installed))
    result = CliRunner().invoke(validate, ["--out-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"Error: {run.SUITE_MISSING}"]
    assert not (tmp_path / HTML_NAME).exists()


def test_command_help_has_an_example() -> None:
    result = CliRunner().invoke(validate, ["--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "capa validate --out-dir" in result.output
