"""Steps of features/nonconformity/similar_records.feature: the hint `nc raise` gives, and the
list of open NCs similar to one."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from tests.bdd.world import World
from tests.support.cast import REPORTER
from tests.support.reading import reading


@pytest.fixture
def raised() -> dict[str, Any]:
    """What the latest raise answered (its `similar` hint among it)."""
    return {}


@pytest.fixture
def similar_list() -> list[str]:
    """The ids the latest list of similar NCs gave."""
    return []


def _raise(app: Any, product: str, title: str) -> Any:
    return app.nonconformities.raise_nc(
        title=title, description=f"{title}, seen at final inspection of lot L2311.",
        source="process", severity="major", product=product, lot="L2311")


@given(parsers.parse('the nonconformity "{nc}" was raised about "{product}" with the title '
                     '"{title}"'))
def nc_raised_about(world: World, nc: str, product: str, title: str) -> None:
    world.refs[nc] = world.act(REPORTER, lambda app: _raise(app, product, title)).id


@when(parsers.parse('"{user}" raises the nonconformity "{nc}" about "{product}" with the title '
                    '"{title}"'))
def raises_about(world: World, raised: dict[str, Any], user: str, nc: str, product: str,
                 title: str) -> None:
    result = world.attempt(user, lambda app: _raise(app, product, title))
    if result is not None:
        world.refs[nc] = result.id
        raised.clear()
        raised.update(result.as_dict())


@when(parsers.parse('"{user}" lists the nonconformities similar to "{nc}"'))
def lists_similar(world: World, similar_list: list[str], user: str, nc: str) -> None:
    ref = world.ref(nc)
    views = world.attempt(user, lambda app: app.queries.similar_ncs(ref))
    similar_list[:] = [view.id for view in views or []]


@then(parsers.parse('"{user}" is told that "{nc}" is a similar open nonconformity'))
def told_similar(world: World, raised: dict[str, Any], user: str, nc: str) -> None:
    world.expect_no_refusal()
    with reading(world.app):
        title = world.app.records.show(world.ref(nc)).title
    assert raised["similar"] == [{"id": world.ref(nc), "status": "open", "title": title}]


@then(parsers.parse('"{user}" is told of no similar open nonconformity'))
def told_none(world: World, raised: dict[str, Any], user: str) -> None:
    world.expect_no_refusal()
    assert raised["similar"] == []


@then(parsers.parse('the list holds exactly "{nc}"'))
def list_holds(world: World, similar_list: list[str], nc: str) -> None:
    world.expect_no_refusal()
    assert similar_list == [world.ref(nc)]


@then("the list holds no nonconformity")
def list_holds_none(world: World, similar_list: list[str]) -> None:
    world.expect_no_refusal()
    assert similar_list == []
