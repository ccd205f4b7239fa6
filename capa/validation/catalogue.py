"""The requirement catalogue that validation evidence is traced to, loaded from TOML."""

from __future__ import annotations

import tomllib
from enum import StrEnum
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Ids become Gherkin tags and pytest marker names, so they must survive both unchanged.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]*$"


class CatalogueError(Exception):
    """The requirement catalogue cannot be read or is inconsistent."""


class Status(StrEnum):
    IMPLEMENTED = "implemented"
    PLANNED = "planned"


class Requirement(BaseModel):
    """One requirement; scenarios tagged with its `tag` are the evidence for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN)
    framework: str = Field(min_length=1)
    source: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    note: str | None = None
    status: Status = Status.IMPLEMENTED
    reason: str | None = None
    out_of_scope: str | None = None

    @model_validator(mode="after")
    def _scope_is_explained(self) -> Requirement:
        if self.status is Status.PLANNED and not (self.reason and self.reason.strip()):
            raise ValueError(f"{self.id}: a planned requirement needs a reason")
        if self.status is not Status.PLANNED and self.reason is not None:
            raise ValueError(f"{self.id}: reason is only for planned requirements")
        if self.out_of_scope is not None and not self.out_of_scope.strip():
            raise ValueError(f"{self.id}: out_of_scope needs a reason")
        if self.out_of_scope is not None and self.status is Status.PLANNED:
            raise ValueError(f"{self.id}: a requirement is either planned or out of scope")
        return self

    @property
    def tag(self) -> str:
        """The Gherkin tag, as written in a feature file."""
        return f"@{self.id}"

    @property
    def needs_evidence(self) -> bool:
        """Whether a passing scenario is expected for this build."""
        return self.out_of_scope is None and self.status is Status.IMPLEMENTED


class Catalogue(BaseModel):
    """All requirements, plus the feature tags that are allowed without naming one."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    extra_tags: tuple[str, ...] = ()
    requirements: tuple[Requirement, ...] = Field(alias="requirement", min_length=1)

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Catalogue:
        seen: set[str] = set()
        for requirement in self.requirements:
            if requirement.id in seen:
                raise ValueError(f"duplicate requirement id {requirement.id}")
            seen.add(requirement.id)
        clashing = seen.intersection(self.extra_tags)
        if clashing:
            raise ValueError(f"extra tags name requirements: {', '.join(sorted(clashing))}")
        return self

    @property
    def known_tags(self) -> frozenset[str]:
        """Tag names (without "@") that a feature file may use."""
        return frozenset(r.id for r in self.requirements) | frozenset(self.extra_tags)


def default_catalogue_text() -> str:
    """The catalogue shipped inside the package."""
    return resources.files("capa.validation").joinpath("requirements.toml").read_text("utf-8")


def parse_catalogue(text: str) -> Catalogue:
    try:
        return Catalogue.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise CatalogueError(f"invalid requirement catalogue: {error}") from error


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load the catalogue at `path`, or the one shipped with capa."""
    text = default_catalogue_text() if path is None else path.read_text("utf-8")
    return parse_catalogue(text)
