"""Shared pytest configuration for every suite, and the step definitions of features/ (in
tests/bdd/steps, one module per area), which pytest loads only from this, the root conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.validation.catalogue import load_catalogue
from tests.support.backends import BACKENDS, discard_target, new_target

pytest_plugins = [
    "tests.bdd.steps.store",
    "tests.bdd.steps.nonconformity",
    "tests.bdd.steps.corrective_action",
    "tests.bdd.steps.effectiveness",
    "tests.bdd.steps.refusals",
    "tests.bdd.steps.audit",
    "tests.bdd.steps.identity",
    "tests.bdd.steps.cli",
    "tests.bdd.steps.integrity",
    "tests.bdd.steps.reports",
    "tests.bdd.steps.migration",
    "tests.bdd.steps.trail_review",
    "tests.bdd.steps.management_review",
    "tests.bdd.steps.reminders",
    "tests.bdd.steps.similar_records",
    "tests.bdd.steps.webhooks",
    "tests.bdd.steps.service_accounts",
]


def pytest_configure(config: pytest.Config) -> None:
    """Register each requirement tag of the validation catalogue, and `cli`, as a marker."""
    catalogue = load_catalogue()
    for requirement in catalogue.requirements:
        config.addinivalue_line("markers", f"{requirement.id}: evidence for {requirement.source}")
    for tag in catalogue.extra_tags:
        config.addinivalue_line("markers", f"{tag}: feature tag that names no requirement")
    config.addinivalue_line(
        "markers", "sqlite_only(reason): runs on SQLite alone; the reason says why")
    config.addinivalue_line(
        "markers", "client_mode: also runs with the command line as a client of `capa serve` "
                   "on a SQLite store (id `[server]`)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test whose store needs a back end (it uses `backend`, usually through a store fixture)
    runs once on SQLite and once on PostgreSQL, ids `[sqlite]` and `[postgres]`; one marked
    `sqlite_only("why")` runs on SQLite alone; one marked `client_mode` runs a third time with
    its commands sent through a real `capa serve` (`[server]`, tests/cli/conftest.py)."""
    if "backend" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("sqlite_only")
    if only is not None and not (only.args or only.kwargs.get("reason")):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs a reason")
    chosen = ["sqlite"] if only else list(BACKENDS)
    if metafunc.definition.get_closest_marker("client_mode") is not None:
        chosen.append("server")
    metafunc.parametrize("backend", chosen, scope="function")


@pytest.fixture
def backend() -> str:
    """The test's back end; pytest_generate_tests gives every test that needs it its value."""
    raise pytest.UsageError("the back end is set by pytest_generate_tests")


@pytest.fixture
def store_target(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty place for a store on the test's back end: a file path, or a fresh database that
    is dropped afterwards. On a machine where no PostgreSQL server can start, the postgres run
    skips and says why."""
    # `server`: a SQLite store that the command line reaches through `capa serve`.
    target = new_target("sqlite" if backend == "server" else backend, tmp_path)
    yield target
    discard_target(target)
