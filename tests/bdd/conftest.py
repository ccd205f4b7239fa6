"""Fixtures of the Gherkin specification in features/.

Each scenario gets a fresh store. Steps drive CapaApplication directly (the @cli feature drives
the real command line). Records are named by an alias in the scenario (the NC "crack"); the
`World` keeps what an alias stands for. A When step that is refused keeps the refusal for the
Then steps to examine; a refusal that no Then step examined fails the scenario.

Every scenario runs twice, on a SQLite store and on a PostgreSQL one (test ids `[sqlite]` and
`[postgres]`; see tests/conftest.py), and `capa validate` counts a scenario as passed only when
it passed on every back end it ran on.

Every person acts with their own password, so that signatures check it again as they would in
use. Adding people hashes passwords, which is slow on purpose; a store with the same people is
therefore built once per back end and test session, and copied for each scenario.

The step definitions live in tests/bdd/steps, one module per area of features/, loaded for
every suite by `pytest_plugins` in tests/conftest.py; what they share is in tests/bdd/world.py.
Only generic fixtures are here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bdd.world import World
from tests.support.backends import new_target

#: Every tag a feature may carry; registered as markers so pytest knows them.
TAGS = (
    *(f"R{n}" for n in range(1, 12)),
    *(f"iso9001-10.2.1{c}" for c in "abcdef"),
    "iso13485-4.2.5",
    "iso13485-8.2.2",
    "iso13485-8.4",
    *(f"iso13485-8.5.2{c}" for c in "abcdef"),
    "iso13485-8.5.3",
    "qmsr-820.10",
    "fda-cp-capa",
    "iso9001-10.2.2a",
    "iso9001-10.2.2b",
    "21cfr11.10d",
    "21cfr11.10e",
    "21cfr11.10f",
    "21cfr11.10g",
    "21cfr11.50",
    "21cfr11.70",
    "21cfr11.200",
    "21cfr11.300c",
    "annex11-9",
    "iso9001-9.3.2",
    "iso9001-7.4",
    "iso13485-5.6.2",
    *(f"qsit-capa-{n}" for n in range(1, 12)),
    "cli",
)


def pytest_configure(config: pytest.Config) -> None:
    for tag in TAGS:
        config.addinivalue_line("markers", f"{tag}: scenarios that prove {tag}")


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def scenario_backend(backend: str) -> str:
    """Every scenario runs on each back end. Steps ask for their fixtures while the scenario
    runs, too late for pytest to parametrise on them; asking for `backend` here, for every
    scenario, is what gives each one its `[sqlite]` and `[postgres]` run."""
    return backend


@pytest.fixture
def world(backend: str, tmp_path: Path) -> Iterator[World]:
    scene = World(backend=backend, folder=tmp_path, target=new_target(backend, tmp_path))
    yield scene
    scene.close()
    if scene.refusal is not None:
        pytest.fail(f"a step was refused and no Then step expected it: {scene.refusal}")


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, str]:
    """Stores already holding a given organisation and people, by (back end, organisation,
    people)."""
    return {}
