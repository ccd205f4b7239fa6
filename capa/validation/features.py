"""Read the Gherkin feature files' scenarios and tags, and check them against the catalogue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from capa.validation.catalogue import Catalogue


class FeatureFileError(Exception):
    """A feature file cannot be parsed."""


class ScenarioSpec(BaseModel):
    """A scenario as written, with every tag that applies to it (feature, rule, examples)."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    name: str
    tags: frozenset[str]


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    name: str
    tags: frozenset[str]
    scenarios: tuple[ScenarioSpec, ...]


def _tag_names(node: Mapping[str, Any]) -> set[str]:
    return {str(tag["name"]).lstrip("@") for tag in node.get("tags", [])}


def _scenarios(
    path: str, children: Iterable[Mapping[str, Any]], inherited: set[str]
) -> Iterable[ScenarioSpec]:
    for child in children:
        if "rule" in child:
            rule = child["rule"]
            yield from _scenarios(path, rule.get("children", []), inherited | _tag_names(rule))
        elif "scenario" in child:
            scenario = child["scenario"]
            tags = inherited | _tag_names(scenario)
            # Examples tags apply to some rows only, but the suite's results name the outline,
            # not the row, so evidence is traced at outline level.
            for examples in scenario.get("examples", []):
                tags |= _tag_names(examples)
            yield ScenarioSpec(
                path=path,
                line=int(scenario["location"]["line"]),
                name=str(scenario["name"]),
                tags=frozenset(tags),
            )


def parse_feature(text: str, path: str) -> FeatureSpec | None:
    """Parse one feature file's text; `path` is how the file is named in reports."""
    # Imported here so that capa itself runs without the test tooling installed.
    from gherkin.errors import ParserError
    from gherkin.parser import Parser

    try:
        document: Mapping[str, Any] = Parser().parse(text)
    except ParserError as error:
        raise FeatureFileError(f"{path}: {error}") from error
    feature = document.get("feature")
    if feature is None:
        return None
    tags = _tag_names(feature)
    return FeatureSpec(
        path=path,
        name=str(feature["name"]),
        tags=frozenset(tags),
        scenarios=tuple(_scenarios(path, feature.get("children", []), tags)),
    )


def read_features(features_dir: Path) -> tuple[FeatureSpec, ...]:
    """Every `*.feature` file below `features_dir`, named by its path relative to it."""
    if not features_dir.is_dir():
        return ()
    features = []
    for file in sorted(features_dir.rglob("*.feature")):
        spec = parse_feature(file.read_text("utf-8"), file.relative_to(features_dir).as_posix())
        if spec is not None:
            features.append(spec)
    return tuple(features)


def unknown_tags(catalogue: Catalogue, features: Sequence[FeatureSpec]) -> list[str]:
    """One message per feature or scenario that uses a tag the catalogue does not know."""
    known = catalogue.known_tags
    problems = []
    for feature in features:
        for tag in sorted(feature.tags - known):
            problems.append(f"{feature.path}: feature tag @{tag} names no requirement")
        for scenario in feature.scenarios:
            for tag in sorted(scenario.tags - feature.tags - known):
                problems.append(
                    f"{scenario.path}:{scenario.line}: scenario {scenario.name!r} "
                    f"has tag @{tag}, which names no requirement"
                )
    return problems


def uncovered_requirements(catalogue: Catalogue, features: Sequence[FeatureSpec]) -> list[str]:
    """One message per requirement that needs evidence but has no scenario tagged with it."""
    used = {tag for feature in features for scenario in feature.scenarios for tag in scenario.tags}
    return [
        f"{requirement.id} ({requirement.source}) has no scenario tagged {requirement.tag}, and "
        "is neither out of scope nor planned with a reason"
        for requirement in catalogue.requirements
        if requirement.needs_evidence and requirement.id not in used
    ]
