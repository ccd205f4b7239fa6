"""Every tag in features/ names a catalogue requirement, and every requirement has a scenario."""

from pathlib import Path

import pytest

from capa.validation.catalogue import Catalogue, CatalogueError, load_catalogue, parse_catalogue
from capa.validation.features import (
    FeatureFileError,
    parse_feature,
    read_features,
    uncovered_requirements,
    unknown_tags,
)

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "features"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "validation"

# The tag of each requirement is fixed: features and reports refer to them by these names.
EXPECTED_TAGS = {
    *(f"@R{n}" for n in range(1, 12)),
    *(f"@iso9001-10.2.1{letter}" for letter in "abcdef"),
    "@iso9001-9.3.2",
    "@iso9001-7.4",
    "@iso13485-5.6.2",
    "@iso13485-4.2.5",
    "@iso13485-8.2.2",
    "@iso13485-8.4",
    *(f"@iso13485-8.5.2{letter}" for letter in "abcdef"),
    "@iso13485-8.5.3",
    "@qmsr-820.10",
    "@fda-cp-capa",
    "@iso9001-10.2.2a",
    "@iso9001-10.2.2b",
    "@21cfr11.10d",
    "@21cfr11.10e",
    "@21cfr11.10f",
    "@21cfr11.10g",
    "@21cfr11.50",
    "@21cfr11.70",
    "@21cfr11.200",
    "@21cfr11.300c",
    "@annex11-9",
    *(f"@qsit-capa-{n}" for n in range(1, 11)),
}


# --- the project's own features -----------------------------------------------------------------


def test_catalogue_maps_requirements_to_the_fixed_tags() -> None:
    catalogue = load_catalogue()
    assert {r.tag for r in catalogue.requirements} == EXPECTED_TAGS
    assert catalogue.extra_tags == ("cli",)


def test_catalogue_rules_are_the_spec_rules() -> None:
    catalogue = load_catalogue()
    rules = [r for r in catalogue.requirements if r.framework == "capa rule"]
    assert [r.id for r in rules] == [f"R{n}" for n in range(1, 12)]
    assert all(r.needs_evidence for r in rules)


def test_every_feature_tag_names_a_requirement() -> None:
    problems = unknown_tags(load_catalogue(), read_features(FEATURES))
    assert not problems, "\n".join(problems)


def test_every_requirement_needing_evidence_has_a_scenario() -> None:
    features = read_features(FEATURES)
    if not any(feature.scenarios for feature in features):
        pytest.skip("no scenarios under features/ yet")
    problems = uncovered_requirements(load_catalogue(), features)
    assert not problems, "\n".join(problems)


# --- the checker itself, on fixtures ------------------------------------------------------------


@pytest.fixture
def catalogue() -> Catalogue:
    return load_catalogue(FIXTURES / "requirements.toml")


def test_known_tags_on_feature_rule_and_scenario_pass(catalogue: Catalogue) -> None:
    features = read_features(FIXTURES / "covered")
    assert unknown_tags(catalogue, features) == []
    assert uncovered_requirements(catalogue, features) == []


def test_tags_are_inherited_from_feature_and_rule(catalogue: Catalogue) -> None:
    (feature,) = read_features(FIXTURES / "covered")
    first, second = feature.scenarios
    assert feature.path == "approval.feature"
    assert (first.line, first.tags) == (4, frozenset({"R1"}))
    assert second.tags == frozenset({"R1", "R2", "cli"})


def test_unknown_tag_fails(catalogue: Catalogue) -> None:
    problems = unknown_tags(catalogue, read_features(FIXTURES / "unknown_tag"))
    assert len(problems) == 2
    assert "misc.feature:8" in problems[0] and "@R99" in problems[0]
    assert "@wip" in problems[1]


def test_unknown_feature_level_tag_fails_without_scenarios(catalogue: Catalogue) -> None:
    feature = parse_feature("@nonsense\nFeature: Empty\n", "empty.feature")
    assert feature is not None
    assert unknown_tags(catalogue, [feature]) == [
        "empty.feature: feature tag @nonsense names no requirement"
    ]


def test_uncovered_requirement_fails(catalogue: Catalogue) -> None:
    problems = uncovered_requirements(catalogue, read_features(FIXTURES / "uncovered"))
    assert len(problems) == 1
    assert problems[0].startswith("R2 ")


def test_out_of_scope_and_planned_need_no_scenario(catalogue: Catalogue) -> None:
    problems = uncovered_requirements(catalogue, read_features(FIXTURES / "covered"))
    assert problems == []
    declared = [r for r in catalogue.requirements if r.id in {"X1", "P1"}]
    assert [r.needs_evidence for r in declared] == [False, False]


def test_empty_or_missing_features_directory(tmp_path: Path) -> None:
    assert read_features(tmp_path) == ()
    assert read_features(tmp_path / "missing") == ()
    (tmp_path / "blank.feature").write_text("# nothing yet\n")
    assert read_features(tmp_path) == ()


def test_malformed_feature_names_the_file() -> None:
    with pytest.raises(FeatureFileError, match="broken.feature"):
        parse_feature("Given a step before any feature\n", "broken.feature")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[requirement]]\nid="A"\nframework="f"\nsource="s"\nstatement="x"\nstatus="planned"\n',
         "planned requirement needs a reason"),
        ('[[requirement]]\nid="A"\nframework="f"\nsource="s"\nstatement="x"\nout_of_scope=" "\n',
         "out_of_scope needs a reason"),
        ('[[requirement]]\nid="A"\nframework="f"\nsource="s"\nstatement="x"\n' * 2,
         "duplicate requirement id A"),
        ('[[requirement]]\nid="has space"\nframework="f"\nsource="s"\nstatement="x"\n',
         "pattern"),
        ('extra_tags=["A"]\n[[requirement]]\nid="A"\nframework="f"\nsource="s"\nstatement="x"\n',
         "extra tags name requirements"),
        ("[[requirement]\n", "invalid requirement catalogue"),
    ],
)
def test_inconsistent_catalogue_is_refused(toml: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(toml)
