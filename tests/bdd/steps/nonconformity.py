"""Steps of nonconformities: what has happened, what people do, what the record shows."""

from __future__ import annotations

import datetime as dt

from pytest_bdd import given, parsers, then, when

from tests.bdd.world import (
    SLACK,
    World,
    assess_needing_ca,
    field_name,
    nc_value,
    parse_utc,
    raise_default_nc,
    rows,
    today,
    word,
)
from tests.support.cast import QUALITY_MANAGER, REPORTER
from tests.support.reading import reading

# -- nonconformities: what has happened -------------------------------------------------------


@given(parsers.parse('the nonconformity "{nc}" was raised'))
def nc_was_raised(world: World, nc: str) -> None:
    raise_default_nc(world, nc)


@given(parsers.parse('a "{severity}" nonconformity "{nc}" was raised'))
def nc_was_raised_with_severity(world: World, severity: str, nc: str) -> None:
    raise_default_nc(world, nc, severity=word(severity))


@given(parsers.parse('the nonconformity "{nc}" was contained'))
def nc_was_contained(world: World, nc: str) -> None:
    ref = world.ref(nc)
    world.act(REPORTER, lambda app: app.nonconformities.contain_nc(
        ref, action="Affected lot moved to the quarantine cage", disposition="quarantine"))


@given(parsers.parse('the nonconformity "{nc}" was assessed as needing a corrective action'))
def nc_was_assessed_needing_ca(world: World, nc: str) -> None:
    assess_needing_ca(world, nc)


@given(parsers.parse('the nonconformity "{nc}" was assessed as needing no corrective action'))
def nc_was_assessed_needing_none(world: World, nc: str) -> None:
    if nc not in world.refs:
        raise_default_nc(world, nc)
    ref = world.ref(nc)
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.assess_nc(
        ref, impact=2, likelihood=1, capa_required=False,
        rationale="Isolated filing slip; the certificate was obtained and filed"))


@given(parsers.parse('the nonconformity "{nc}" was closed without a corrective action'))
def nc_was_closed_alone(world: World, nc: str) -> None:
    ref = world.ref(nc)
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.close_nc(ref))


@given(parsers.parse('the nonconformity "{nc}" was cancelled because "{reason}"'))
def nc_was_cancelled(world: World, nc: str, reason: str) -> None:
    ref = world.ref(nc)
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.cancel_nc(ref, reason=reason))


@given(parsers.parse('"{user}" corrected the "{name}" of "{nc}" to "{value}" because "{reason}"'))
def nc_was_amended(world: World, user: str, name: str, nc: str, value: str, reason: str) -> None:
    ref = world.ref(nc)
    world.act(user, lambda app: app.nonconformities.amend_nc(ref, field=field_name(name),
                                                             value=value,
                                                             reason=reason))


@given(parsers.parse('the nonconformity "{nc}" was linked to "{ca}"'))
def nc_was_linked(world: World, nc: str, ca: str) -> None:
    nc_ref, ca_ref = world.ref(nc), world.ref(ca)
    world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.link_nc(nc_ref, ca_ref))


# -- nonconformities: what people do ----------------------------------------------------------


@when(parsers.parse('"{user}" raises the nonconformity "{nc}":'))
def raises_nc(world: World, user: str, nc: str, datatable: list[list[str]]) -> None:
    given_fields = {field_name(key): nc_value(field_name(key), value) for key, value in datatable}
    result = world.attempt(user, lambda app: app.nonconformities.raise_nc(**given_fields))
    if result is not None:
        world.refs[nc] = result.id


@when(parsers.parse('"{user}" records the containment of "{nc}": "{action}", disposition '
                    '"{disposition}"'))
def contains_nc(world: World, user: str, nc: str, action: str, disposition: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.contain_nc(ref, action=action,
                                                                   disposition=word(disposition)))


@when(parsers.parse('"{user}" records the containment of "{nc}": "{action}", disposition '
                    '"{disposition}", at "{location}"'))
def contains_nc_at(world: World, user: str, nc: str, action: str, disposition: str,
                   location: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.contain_nc(ref, action=action,
                                                                   disposition=word(disposition),
                                                                   location=location))


@when(parsers.parse('"{user}" records a containment of "{nc}" without saying what was done'))
def contains_nc_without_action(world: World, user: str, nc: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.contain_nc(ref, action="  ",
                                                                   disposition="quarantine"))


@when(parsers.parse('"{user}" assesses "{nc}" at impact {impact:d} and likelihood '
                    '{likelihood:d}, needing a corrective action'))
def assesses_needing_ca(world: World, user: str, nc: str, impact: int, likelihood: int) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.assess_nc(
        ref, impact=impact, likelihood=likelihood, capa_required=True))


@when(parsers.parse('"{user}" assesses "{nc}" at impact {impact:d} and likelihood '
                    '{likelihood:d}, needing no corrective action because "{rationale}"'))
def assesses_needing_none(
    world: World, user: str, nc: str, impact: int, likelihood: int, rationale: str
) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.assess_nc(
        ref, impact=impact, likelihood=likelihood, capa_required=False, rationale=rationale))


@when(parsers.parse('"{user}" assesses "{nc}" at impact {impact:d} and likelihood '
                    '{likelihood:d}, needing no corrective action and giving no rationale'))
def assesses_needing_none_without_rationale(
    world: World, user: str, nc: str, impact: int, likelihood: int
) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.assess_nc(
        ref, impact=impact, likelihood=likelihood, capa_required=False, rationale=None))


@when(parsers.parse('"{user}" closes the nonconformity "{nc}"'))
def closes_nc(world: World, user: str, nc: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.close_nc(ref))


@when(parsers.parse('"{user}" cancels the nonconformity "{nc}" because "{reason}"'))
def cancels_nc(world: World, user: str, nc: str, reason: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.cancel_nc(ref, reason=reason))


@when(parsers.parse('"{user}" cancels the nonconformity "{nc}" without a reason'))
def cancels_nc_without_reason(world: World, user: str, nc: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.cancel_nc(ref, reason=""))


@when(parsers.parse('"{user}" reopens the nonconformity "{nc}" because "{reason}"'))
def reopens_nc(world: World, user: str, nc: str, reason: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.reopen_nc(ref, reason=reason))


@when(parsers.parse('"{user}" reopens the nonconformity "{nc}" without a reason'))
def reopens_nc_without_reason(world: World, user: str, nc: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.reopen_nc(ref, reason="  "))


@when(parsers.parse('"{user}" corrects the "{name}" of "{nc}" to "{value}" because "{reason}"'))
def amends_nc(world: World, user: str, name: str, nc: str, value: str, reason: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.amend_nc(ref, field=field_name(name),
                                                                 value=value,
                                                                 reason=reason))


@when(parsers.parse('"{user}" corrects the "{name}" of "{nc}" to "{value}" without a reason'))
def amends_nc_without_reason(world: World, user: str, name: str, nc: str, value: str) -> None:
    ref = world.ref(nc)
    world.attempt(user, lambda app: app.nonconformities.amend_nc(ref, field=field_name(name),
                                                                 value=value,
                                                                 reason=""))


@when(parsers.parse('"{user}" links "{nc}" to "{ca}"'))
def links_nc(world: World, user: str, nc: str, ca: str) -> None:
    nc_ref, ca_ref = world.ref(nc), world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.link_nc(nc_ref, ca_ref))


@when("a nonconformity is raised with nobody identified as acting")
def raises_nc_anonymously(world: World) -> None:
    world.attempt("", lambda app: app.nonconformities.raise_nc(
        title="Loose screw", description="Found on the floor of cell 2", source="process",
        severity="minor"))


# -- nonconformities: what the record shows ---------------------------------------------------


@then(parsers.parse('the nonconformity "{nc}" is "{status}"'))
def nc_status_is(world: World, nc: str, status: str) -> None:
    assert world.nc(nc).status == status


@then(parsers.parse('the nonconformity "{nc}" is number "{number}" of this year'))
def nc_number_is(world: World, nc: str, number: str) -> None:
    assert world.nc(nc).id == f"NC-{today().year}-{number}"


@then(parsers.parse('the nonconformity "{nc}" records:'))
def nc_records(world: World, nc: str, datatable: list[list[str]]) -> None:
    view = world.nc(nc).model_dump()
    for key, expected in datatable:
        name = field_name(key)
        assert view[name] == nc_value(name, expected), f"{key}: {view[name]!r}"


@then(parsers.parse('the nonconformity "{nc}" was reported by "{user}" during this scenario'))
def nc_reported_by(world: World, nc: str, user: str) -> None:
    view = world.nc(nc)
    assert view.reported_by == user
    assert world.started - SLACK <= parse_utc(view.created_at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('the containment of "{nc}" lists, each entry time-stamped in UTC:'))
def containment_lists(world: World, nc: str, datatable: list[list[str]]) -> None:
    entries = world.nc(nc).containment
    expected = rows(datatable)
    assert [(e.action, e.disposition, e.by) for e in entries] == [
        (r["action"], word(r["disposition"]), r["by"]) for r in expected]
    if expected and "location" in expected[0]:
        assert [e.location for e in entries] == [r["location"] or None for r in expected]
    for entry in entries:
        assert world.started - SLACK <= parse_utc(entry.at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('the risk of "{nc}" is {risk:d}, level "{level}"'))
def risk_is(world: World, nc: str, risk: int, level: str) -> None:
    assessment = world.nc(nc).assessment
    assert assessment is not None
    assert (assessment.risk, assessment.risk_level) == (risk, level)


@then(parsers.parse('the assessment of "{nc}" by "{user}" requires a corrective action'))
def assessment_requires_ca(world: World, nc: str, user: str) -> None:
    assessment = world.nc(nc).assessment
    assert assessment is not None
    assert (assessment.capa_required, assessment.by) == (True, user)


@then(parsers.parse('the assessment of "{nc}" by "{user}" requires no corrective action, '
                    'because "{rationale}"'))
def assessment_requires_none(world: World, nc: str, user: str, rationale: str) -> None:
    assessment = world.nc(nc).assessment
    assert assessment is not None
    assert (assessment.capa_required, assessment.rationale, assessment.by) == (
        False, rationale, user)


@then(parsers.parse('the nonconformity "{nc}" is not assessed'))
def nc_not_assessed(world: World, nc: str) -> None:
    assert world.nc(nc).assessment is None


@then(parsers.parse('the closure of the nonconformity "{nc}" is signed by "{user}", meaning '
                    '"{meaning}"'))
def nc_closure_signed(world: World, nc: str, user: str, meaning: str) -> None:
    closure = world.nc(nc).closure
    assert closure is not None and closure.signature is not None
    assert (closure.signature.user_id, closure.signature.meaning) == (user, meaning)
    assert closure.signature.full_name == world.people[user]
    assert closure.with_ca is None


@then(parsers.parse('the nonconformity "{nc}" was closed together with "{ca}"'))
def nc_closed_with_ca(world: World, nc: str, ca: str) -> None:
    view = world.nc(nc)
    assert view.status == "closed"
    assert view.closure is not None and view.closure.with_ca == world.ref(ca)


@then(parsers.parse('the cancellation of "{alias}" by "{user}" gives the reason "{reason}"'))
def cancellation_gives_reason(world: World, alias: str, user: str, reason: str) -> None:
    world.expect_no_refusal()
    with reading(world.app):
        view = world.app.records.show(world.ref(alias))
    assert view.cancellation is not None
    assert (view.cancellation.by, view.cancellation.reason) == (user, reason)


@then(parsers.parse('"{nc}" and "{ca}" are linked to each other'))
def linked_both_ways(world: World, nc: str, ca: str) -> None:
    assert world.ref(ca) in world.nc(nc).linked_cas
    assert world.ref(nc) in world.ca(ca).linked_ncs
