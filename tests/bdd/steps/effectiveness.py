"""Steps of features/effectiveness beyond the verdict itself: the effectiveness check planned
up front and extended when inconclusive, the impact assessment of R11, and the store's profile.
"""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from tests.bdd.world import World, days_from_today
from tests.support.cast import ADMINISTRATOR
from tests.support.reading import reading

# -- the store's profile ----------------------------------------------------------------------


@given(parsers.parse('the store is run under the "{profile}" profile, because "{reason}"'))
def store_profile(world: World, profile: str, reason: str) -> None:
    world.act(ADMINISTRATOR, lambda app: app.identity.change_profile(profile, reason=reason))


@when(parsers.parse('"{user}" changes the store to the "{profile}" profile, because "{reason}"'))
def changes_profile(world: World, user: str, profile: str, reason: str) -> None:
    world.attempt(user, lambda app: app.identity.change_profile(profile, reason=reason))


@then(parsers.parse('the store is run under the "{profile}" profile'))
def store_runs_under(world: World, profile: str) -> None:
    world.expect_no_refusal()
    assert world.app.profile() == profile


@then(parsers.parse('the history of the store shows the change to "{profile}" by "{user}", '
                    'because "{reason}"'))
def store_history_shows(world: World, profile: str, user: str, reason: str) -> None:
    with reading(world.app):
        latest = world.app.records.history("STORE")[-1]
    assert (latest.event_type, latest.actor, latest.reason) == ("ProfileChanged", user, reason)
    assert any(c.field == "profile" and c.new == profile for c in latest.changes)


# -- planned effectiveness checks -------------------------------------------------------------


def _plan(world: World, user: str, ca: str, criteria: str, method: str | None,
          days: int) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_check(
        ref, criteria=criteria, method=method, due=days_from_today(days)))


@given(parsers.parse('"{user}" planned the effectiveness check of "{ca}": "{criteria}", due in '
                     '{days:d} days'))
def check_was_planned(world: World, user: str, ca: str, criteria: str, days: int) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.plan_check(
        ref, criteria=criteria, due=days_from_today(days)))


@when(parsers.parse('"{user}" plans the effectiveness check of "{ca}": "{criteria}" by '
                    '"{method}", due in {days:d} days'))
def plans_check(world: World, user: str, ca: str, criteria: str, method: str,
                days: int) -> None:
    _plan(world, user, ca, criteria, method, days)


@when(parsers.parse('"{user}" finds the check of "{ca}" inconclusive: "{note}", extending it by '
                    '{days:d} days because "{reason}"'))
def finds_inconclusive(world: World, user: str, ca: str, note: str, days: int,
                       reason: str) -> None:
    ref = world.ref(ca)
    view = world.ca(ca)
    current = [c for c in view.checks or [] if c.iteration == view.iteration]
    due = current[-1].due if current else days_from_today(0)
    import datetime as dt

    new_due = (dt.date.fromisoformat(due) + dt.timedelta(days=days)).isoformat()
    world.attempt(user, lambda app: app.corrective_actions.verify_ca(
        ref, inconclusive=True, note=note, due=new_due, reason=reason))


@then(parsers.parse('the effectiveness check of "{ca}" is "{state}", due in {days:d} days, '
                    'planned by "{user}"'))
def check_is(world: World, ca: str, state: str, days: int, user: str) -> None:
    view = world.ca(ca)
    assert view.checks, f"{ca} has no planned effectiveness check"
    check = [c for c in view.checks if c.iteration == view.iteration][-1]
    assert (check.state, check.due, check.planned_by) == (state, days_from_today(days), user)


@then(parsers.parse('the latest verification of "{ca}" answers the criteria "{criteria}"'))
def verification_answers(world: World, ca: str, criteria: str) -> None:
    verifications = world.ca(ca).verifications
    assert verifications and verifications[-1].criteria == criteria


@then(parsers.parse('the check of "{ca}" was extended from {old:d} to {new:d} days from today by '
                    '"{user}", signed meaning "{meaning}", because "{reason}"'))
def check_was_extended(world: World, ca: str, old: int, new: int, user: str, meaning: str,
                       reason: str) -> None:
    view = world.ca(ca)
    assert view.checks
    [extension] = view.checks[-1].extensions
    assert (extension.from_, extension.to, extension.reason) == (
        days_from_today(old), days_from_today(new), reason)
    assert (extension.signature.user_id, extension.signature.meaning) == (user, meaning)
    assert extension.signature.full_name == world.people[user]


# -- R11: the actions do no harm --------------------------------------------------------------


@given(parsers.parse('"{user}" recorded for "{ca}" that the actions do no harm: "{statement}"'))
def impact_was_assessed(world: World, user: str, ca: str, statement: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.assess_impact(ref, statement=statement))


@when(parsers.parse('"{user}" records for "{ca}" that the actions do no harm: "{statement}", with '
                    'the risk file "{risk_file}", the change "{change}" and the training '
                    '"{training}"'))
def assesses_impact(world: World, user: str, ca: str, statement: str, risk_file: str,
                    change: str, training: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.assess_impact(
        ref, statement=statement, risk_file=risk_file, changes=[change], training=[training]))


@then(parsers.parse('the impact assessment of "{ca}" by "{user}" names the risk file '
                    '"{risk_file}", the change "{change}" and the training "{training}"'))
def impact_names(world: World, ca: str, user: str, risk_file: str, change: str,
                 training: str) -> None:
    view = world.ca(ca)
    assert view.impacts
    impact = view.impacts[-1]
    assert (impact.by, impact.risk_file, impact.changes, impact.training) == (
        user, risk_file, [change], [training])
    assert impact.iteration == view.iteration
