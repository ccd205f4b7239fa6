"""Steps of the audit trail: a record's history and its earlier versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pytest_bdd import parsers, then, when

from capa.app.views import HistoryEntry
from tests.bdd.world import SLACK, World, field_name, nc_value, parse_utc, rows
from tests.support.cast import AUDITOR
from tests.support.reading import reading

# -- history and earlier versions -------------------------------------------------------------


@when(parsers.parse('the auditor reads the history of "{alias}"'), target_fixture="trail")
def reads_history(world: World, alias: str) -> list[HistoryEntry]:
    world.expect_no_refusal()
    with reading(world.app):
        return world.app.records.history(world.ref(alias))


@when(parsers.parse('the auditor views "{alias}" as it stood at version {version:d}'),
      target_fixture="viewed")
def views_at_version(world: World, alias: str, version: int) -> Any:
    ref = world.ref(alias)
    return world.attempt(AUDITOR, lambda app: app.records.show(ref, version=version))


@when(parsers.parse('the auditor views "{alias}" as it stood at the moment "{moment}"'),
      target_fixture="viewed")
def views_at_moment(world: World, alias: str, moment: str) -> Any:
    ref, when_ = world.ref(alias), world.moments[moment].isoformat()
    return world.attempt(AUDITOR, lambda app: app.records.show(ref, as_of=when_))


@when(parsers.parse('the auditor views "{ca}" as its approver saw it when signing'),
      target_fixture="viewed")
def views_as_signed(world: World, ca: str) -> Any:
    approval = world.ca(ca).approvals[0]
    ref, version = world.ref(ca), approval.signature.signed_version
    return world.attempt(AUDITOR, lambda app: app.records.show(ref, version=version))


@then(parsers.parse("the view is version {version:d}"))
def view_is_version(world: World, viewed: Any, version: int) -> None:
    world.expect_no_refusal()
    assert viewed.version == version


@then(parsers.parse('the view shows the "{name}" as "{value}"'))
def view_shows(world: World, viewed: Any, name: str, value: str) -> None:
    world.expect_no_refusal()
    key = field_name(name)
    assert getattr(viewed, key) == (nc_value(key, value) if key in ("source", "severity")
                                    else value)


@then(parsers.parse("the view shows {count:d} planned action items"))
def view_shows_items(world: World, viewed: Any, count: int) -> None:
    world.expect_no_refusal()
    assert len(viewed.items) == count


@then("the history lists, oldest first:")
def history_lists(trail: list[HistoryEntry], datatable: list[list[str]]) -> None:
    assert [(str(e.version), e.event_type, e.actor, e.reason or "") for e in trail] == [
        (r["version"], r["event"], r["by"], r["reason"]) for r in rows(datatable)]


@then(parsers.parse('the history shows the "{name}" changed from "{old}" to "{new}" by "{user}" '
                    'because "{reason}"'))
def history_shows_change(trail: list[HistoryEntry], name: str, old: str, new: str, user: str,
                         reason: str) -> None:
    key = field_name(name)
    found = [(e.actor, e.reason) for e in trail
             for c in e.changes if (c.field, c.old, c.new) == (key, old, new)]
    assert found == [(user, reason)], f"changes of {key}: {found}"


@then(parsers.parse("every event in the history names who acted and when, in UTC"))
def every_event_attributed(world: World, trail: list[HistoryEntry]) -> None:
    assert trail, "the history is empty"
    now = dt.datetime.now(dt.UTC)
    previous = world.started - SLACK
    for entry in trail:
        assert entry.actor.strip(), f"version {entry.version} names nobody"
        moment = parse_utc(entry.time)
        assert previous <= moment <= now, f"version {entry.version} at {entry.time}"
        previous = moment


@then("the history numbers the record's versions 1, 2, 3 … without a gap, in the store's order")
def versions_without_gap(trail: list[HistoryEntry]) -> None:
    assert [e.version for e in trail] == list(range(1, len(trail) + 1))
    positions = [e.position for e in trail]
    assert all(p > 0 for p in positions)
    assert positions == sorted(set(positions))
