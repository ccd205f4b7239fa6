"""Steps every area uses: the store and its quality team (tests/support/cast.py), the files and
the moments a scenario notes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pytest_bdd import given, parsers

from capa.app.store import open_store
from tests.bdd.world import World
from tests.support.backends import clone_target, new_target, store_exists
from tests.support.cast import QUALITY_TEAM, Cast, password_of

# -- the store --------------------------------------------------------------------------------


def build_store(target: str, organisation: str, cast: Cast) -> None:
    """A store for `organisation` holding the people of `cast`, each with their own password."""
    admin = next(user for user, (_, roles) in cast.items() if "admin" in roles)
    app = open_store(target, create=True)
    try:
        with app.acting_as(admin):
            app.identity.initialise(organisation, admin=admin, full_name=cast[admin][0],
                                    password=password_of(admin))
        with app.acting_as(admin, password_of(admin)):
            for user, (full_name, roles) in cast.items():
                if user != admin:
                    app.identity.add_user(user, full_name=full_name, roles=roles,
                                          password=password_of(user))
    finally:
        app.close()


@given(parsers.parse('the quality records store of "{organisation}", with its quality team'))
def the_quality_team(
    world: World, store_templates: dict[Any, str], tmp_path_factory: pytest.TempPathFactory,
    organisation: str,
) -> None:
    """The store of the scenario: a copy of one made once per back end and organisation."""
    key = (world.backend, organisation)
    if key not in store_templates:
        template = new_target(world.backend, tmp_path_factory.mktemp("store"))
        build_store(template, organisation, QUALITY_TEAM)
        store_templates[key] = template
    assert world._app is None and not store_exists(world.target)
    world.targets.append(world.target)
    world.target = clone_target(world.backend, store_templates[key], world.folder)
    world.people = {user: full_name for user, (full_name, _) in QUALITY_TEAM.items()}
    assert world.app.store_info()["organisation"] == organisation


@given(parsers.parse('the evidence file "{name}" containing "{content}"'))
def an_evidence_file(world: World, name: str, content: str) -> None:
    folder = world.folder / "evidence"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    world.files[name] = path


@given(parsers.parse('the moment "{name}" is noted'))
def a_noted_moment(world: World, name: str) -> None:
    world.moments[name] = dt.datetime.now(dt.UTC)
