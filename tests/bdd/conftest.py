"""Shared steps and fixtures of the Gherkin specification in features/.

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

Defaults used where a Given step does not name the person:
  mhernandez  quality manager: assesses, opens CAs, approves, closes
  tokafor     reporter: raises and contains NCs
  lnguyen     technician: assignee of the action items a CA is given on its way to a state
  rkowalski   verifier of effectiveness
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.app.views import CorrectiveActionView, HistoryEntry, NonconformityView
from capa.domain.errors import (
    CapaError,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    NotPermitted,
    RuleViolation,
)
from tests.support.backends import (
    clone_target,
    discard_target,
    new_target,
    query,
    store_exists,
)
from tests.support.reading import reading

QUALITY_MANAGER = "mhernandez"
REPORTER = "tokafor"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
AUDITOR = "dbrooks"

def password_of(user: str) -> str:
    return f"{user}-correct-horse"


#: Every tag a feature may carry; registered as markers so pytest knows them.
TAGS = (
    *(f"R{n}" for n in range(1, 11)),
    *(f"iso9001-10.2.1{c}" for c in "abcdef"),
    "iso9001-10.2.2a",
    "iso9001-10.2.2b",
    "21cfr11.10e",
    "21cfr11.10f",
    "21cfr11.10g",
    "21cfr11.50",
    "21cfr11.70",
    "21cfr11.200",
    "annex11-9",
    *(f"qsit-capa-{n}" for n in range(1, 12)),
    "cli",
)

#: Field names as a quality manager says them, and as the record calls them.
FIELDS = {
    "external reference": "external_ref",
    "detected on": "detected_on",
    "reported by": "reported_by",
}

#: One slack second either side when checking that a time falls within the scenario.
SLACK = dt.timedelta(seconds=1)


def pytest_configure(config: pytest.Config) -> None:
    for tag in TAGS:
        config.addinivalue_line("markers", f"{tag}: scenarios that prove {tag}")


# -- words and dates --------------------------------------------------------------------------


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def days_from_today(days: int) -> str:
    return (today() + dt.timedelta(days=days)).isoformat()


def word(text: str) -> str:
    """A vocabulary word as people write it ("customer complaint") as the record spells it."""
    return text.strip().lower().replace(" ", "-")


def field_name(text: str) -> str:
    return FIELDS.get(text.strip(), text.strip().replace(" ", "_"))


def day(text: str) -> str:
    """'today', 'yesterday', 'tomorrow', '3 days ago' or 'in 3 days' as a date."""
    text = text.strip()
    named = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if text in named:
        return days_from_today(named[text])
    if text.endswith(" days ago"):
        return days_from_today(-int(text.removesuffix(" days ago")))
    if text.startswith("in ") and text.endswith(" days"):
        return days_from_today(int(text.removeprefix("in ").removesuffix(" days")))
    raise ValueError(f"not a day this specification knows: {text!r}")


def nc_value(name: str, text: str) -> str | None:
    """A value of an NC field as written in a feature, as the record holds it."""
    if name in ("source", "severity"):
        return word(text)
    if name == "detected_on":
        return day(text)
    return text or None


def parse_utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), f"{text!r} is not a UTC time (no Z)"
    moment = dt.datetime.fromisoformat(text)
    assert moment.utcoffset() == dt.timedelta(0), f"{text!r} is not in UTC"
    return moment


def rows(datatable: list[list[str]]) -> list[dict[str, str]]:
    """A table with a header row as one dict per row."""
    header, *body = datatable
    return [dict(zip(header, row, strict=True)) for row in body]


# -- the world of one scenario ----------------------------------------------------------------


@dataclass
class World:
    """What one scenario has built so far: its store (`target`, a SQLite path or PostgreSQL URI
    on the scenario's `backend`) in its own folder."""

    backend: str
    folder: Path
    target: str
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    people: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    moments: dict[str, dt.datetime] = field(default_factory=dict)
    refusal: CapaError | None = None
    events_before: int | None = None
    targets: list[str] = field(default_factory=list)
    _app: CapaApplication | None = None

    @property
    def app(self) -> CapaApplication:
        """The store of this scenario, created on first use unless the command line made it."""
        if self._app is None:
            self._app = open_store(self.target, create=not store_exists(self.target))
        return self._app

    def place(self, name: str) -> str:
        """Another empty place for a store on this scenario's back end."""
        target = new_target(self.backend, self.folder, name)
        self.targets.append(target)
        return target

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        for target in {self.target, *self.targets}:
            discard_target(target)

    def password_of(self, user: str) -> str:
        return password_of(user)

    def ref(self, alias: str) -> str:
        try:
            return self.refs[alias]
        except KeyError:
            pytest.fail(f"this scenario has no record called {alias!r}")

    def events(self) -> int:
        """How many events the store holds."""
        return self.app.recorder.max_notification_id() or 0

    def act(self, user: str, action: Callable[[CapaApplication], Any]) -> Any:
        """A Given step: do it as `user`; a refusal here is a broken scenario, not a result."""
        self.expect_no_refusal()
        with self.app.acting_as(user, password_of(user)):
            return action(self.app)

    def attempt(
        self, user: str, action: Callable[[CapaApplication], Any], *,
        password: str | None = None, without_password: bool = False,
    ) -> Any:
        """A When step: try it as `user`, with their own password unless told otherwise; a
        refusal is kept for the Then steps."""
        self.expect_no_refusal()
        self.events_before = self.events()
        secret = None if without_password else password or password_of(user)
        try:
            with self.app.acting_as(user, secret):
                return action(self.app)
        except CapaError as exc:
            self.refusal = exc
            return None

    def take_refusal(self) -> CapaError:
        assert self.refusal is not None, "the command was not refused"
        refusal, self.refusal = self.refusal, None
        return refusal

    def expect_no_refusal(self) -> None:
        if self.refusal is not None:
            refusal, self.refusal = self.refusal, None
            pytest.fail(f"the command was refused: {refusal}")

    def nc(self, alias: str) -> NonconformityView:
        self.expect_no_refusal()
        with reading(self.app):
            view = self.app.records.show(self.ref(alias))
        assert isinstance(view, NonconformityView)
        return view

    def ca(self, alias: str) -> CorrectiveActionView:
        self.expect_no_refusal()
        with reading(self.app):
            view = self.app.records.show(self.ref(alias))
        assert isinstance(view, CorrectiveActionView)
        return view


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


# -- driving records to a state ---------------------------------------------------------------


def raise_default_nc(world: World, alias: str, severity: str = "major") -> str:
    result = world.act(REPORTER, lambda app: app.nonconformities.raise_nc(
        title=f"{alias.capitalize()} found at final inspection",
        description=f"{alias.capitalize()} seen on units of lot L2311 at final inspection.",
        source="process", severity=severity, product="IP-200 housing", lot="L2311"))
    world.refs[alias] = result.id
    return str(result.id)


def assess_needing_ca(world: World, alias: str) -> None:
    if alias not in world.refs:
        raise_default_nc(world, alias)
    ref = world.ref(alias)
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.assess_nc(
        ref, impact=4, likelihood=3, capa_required=True))


def open_default_ca(world: World, alias: str, owner: str, nc_alias: str) -> None:
    nc_ref = world.ref(nc_alias)
    result = world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.open_ca(
        title=f"{alias.capitalize()} corrective action",
        problem=f"{alias.capitalize()}: the problem raised in {nc_ref}",
        owner=owner, ncs=[nc_ref]))
    world.refs[alias] = result.id


CA_PATH = ("open", "investigated", "planned", "approved", "implemented", "verified", "closed")


def _next_step(world: World, view: CorrectiveActionView) -> None:
    ref, owner = view.id, view.owner
    if view.status == "open":
        world.act(owner, lambda app: app.corrective_actions.investigate_ca(
            ref, method="ishikawa", category="machine",
            root_cause="Worn gate insert on mould M-17 gives thin boss walls"))
    elif view.status == "investigated" and not any(a.iteration == view.iteration
                                                   for a in view.analyses):
        # A later iteration re-examines the root cause before it plans (R7).
        world.act(owner, lambda app: app.corrective_actions.investigate_ca(
            ref, method="ishikawa", category="material",
            root_cause="Resin moisture above 0.02 % weakens the boss"))
    elif view.status == "investigated":
        world.act(owner, lambda app: app.corrective_actions.plan_ca(
            ref, action="Sort and rework the affected lot", assignee=TECHNICIAN,
            due=days_from_today(14), action_type="correction"))
    elif view.status == "planned":
        world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.approve_ca(ref))
    elif view.status == "approved":
        for item in view.items:
            if item.state == "open":
                world.act(item.assignee, lambda app,
                          n=item.number: app.corrective_actions.complete_action(
                    ref, n, note="Done as planned"))
    elif view.status == "implemented":
        world.act(VERIFIER, lambda app: app.corrective_actions.verify_ca(
            ref, effective=True, note="No recurrence in six lots since the change"))
    elif view.status == "verified":
        world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.close_ca(ref))


def advance_ca(world: World, alias: str, target: str) -> None:
    assert target in CA_PATH, f"{target!r} is not a state a CA reaches on its way to closure"
    while (view := world.ca(alias)).status != target:
        assert view.status in CA_PATH and CA_PATH.index(view.status) < CA_PATH.index(target), (
            f"{alias} is {view.status} and cannot go forward to {target}")
        _next_step(world, view)


# -- the store --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, str]:
    """Stores already holding a given organisation and people, by (back end, organisation,
    people)."""
    return {}


def build_store(target: str, organisation: str, people: list[dict[str, str]]) -> None:
    admin = next(p for p in people if "admin" in roles_of(p))
    app = open_store(target, create=True)
    try:
        with app.acting_as(admin["user"]):
            app.identity.initialise(organisation, admin=admin["user"], full_name=admin["full name"],
                                    password=password_of(admin["user"]))
        with app.acting_as(admin["user"], password_of(admin["user"])):
            for person in people:
                if person is not admin:
                    app.identity.add_user(person["user"], full_name=person["full name"],
                                          roles=roles_of(person),
                                          password=password_of(person["user"]))
    finally:
        app.close()


def roles_of(person: dict[str, str]) -> list[str]:
    return [r.strip() for r in person["roles"].split(",")]


@given(parsers.parse('a quality records store for "{organisation}" with these people:'))
def a_store(
    world: World, store_templates: dict[Any, str], tmp_path_factory: pytest.TempPathFactory,
    organisation: str, datatable: list[list[str]],
) -> None:
    people = rows(datatable)
    key = (world.backend, organisation, tuple(tuple(row) for row in datatable))
    if key not in store_templates:
        template = new_target(world.backend, tmp_path_factory.mktemp("store"))
        build_store(template, organisation, people)
        store_templates[key] = template
    assert world._app is None and not store_exists(world.target)
    world.targets.append(world.target)
    world.target = clone_target(world.backend, store_templates[key], world.folder)
    world.people = {p["user"]: p["full name"] for p in people}
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
    world.act(QUALITY_MANAGER, lambda app: app.nonconformities.link_nc(nc_ref, ca_ref))


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
    world.attempt(user, lambda app: app.nonconformities.link_nc(nc_ref, ca_ref))


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


# -- corrective actions: what has happened ----------------------------------------------------


@given(parsers.parse('the corrective action "{ca}" owned by "{owner}" was opened for "{nc}"'))
def ca_was_opened(world: World, ca: str, owner: str, nc: str) -> None:
    open_default_ca(world, ca, owner, nc)


@given(parsers.parse('the corrective action "{ca}" owned by "{owner}" has reached "{state}"'))
def ca_has_reached_new(world: World, ca: str, owner: str, state: str) -> None:
    nc = f"{ca}-nonconformity"
    assess_needing_ca(world, nc)
    open_default_ca(world, ca, owner, nc)
    advance_ca(world, ca, state)


@given(parsers.parse('the corrective action "{ca}" has since reached "{state}"'))
def ca_has_reached(world: World, ca: str, state: str) -> None:
    advance_ca(world, ca, state)


@given(parsers.parse('"{user}" planned the "{kind}" action "{text}" for "{ca}", assigned to '
                     '"{assignee}" and due in {days:d} days'))
def ca_was_planned(
    world: World, user: str, kind: str, text: str, ca: str, assignee: str, days: int
) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.plan_ca(ref, action=text, assignee=assignee,
                                                               due=days_from_today(days),
                                                               action_type=word(kind)))


@given(parsers.parse('"{user}" approved the plan of "{ca}"'))
def ca_was_approved(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.approve_ca(ref))


@given(parsers.parse('"{user}" completed action "{number}" of "{ca}" noting "{note}"'))
def action_was_completed(world: World, user: str, number: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note))


@given(parsers.parse('"{user}" completed action "{number}" of "{ca}" with the evidence file '
                     '"{name}", noting "{note}"'))
def action_was_completed_with_evidence(world: World, user: str, number: str, ca: str, name: str,
                                       note: str) -> None:
    ref, path = world.ref(ca), world.files[name]
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                       evidence=[path]))

@given(parsers.parse('"{user}" recorded for "{doer}" that action "{number}" of "{ca}" was done, '
                     'noting "{note}" because "{reason}"'))
def completion_was_recorded_on_behalf(world: World, user: str, doer: str, number: str, ca: str,
                                      note: str, reason: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                       on_behalf_of=doer,
                                                                       reason=reason))


@given(parsers.parse('"{user}" re-examined the root cause of "{ca}": "{root_cause}", category '
                     '"{category}"'))
def ca_was_reinvestigated(world: World, user: str, ca: str, root_cause: str,
                          category: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.investigate_ca(ref, method="ishikawa",
                                                                      root_cause=root_cause,
                                                                      category=word(category)))


@given(parsers.parse('"{user}" found "{ca}" not effective: "{note}"'))
def ca_was_found_not_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.act(user, lambda app: app.corrective_actions.verify_ca(ref, effective=False, note=note))


@given(parsers.parse('the corrective action "{ca}" was cancelled because "{reason}"'))
def ca_was_cancelled(world: World, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.act(QUALITY_MANAGER, lambda app: app.corrective_actions.cancel_ca(ref, reason=reason))


# -- corrective actions: what people do -------------------------------------------------------


@when(parsers.parse('"{user}" opens the corrective action "{ca}" for "{nc}" with owner '
                    '"{owner}"'))
def opens_ca(world: World, user: str, ca: str, nc: str, owner: str) -> None:
    nc_ref = world.ref(nc)
    result = world.attempt(user, lambda app: app.corrective_actions.open_ca(
        title="Housing cracks at screw boss B2",
        problem="IP-200 housings crack at boss B2 within weeks of assembly",
        owner=owner, ncs=[nc_ref]))
    if result is not None:
        world.refs[ca] = result.id


@when(parsers.parse('"{user}" records a "{method}" analysis of "{ca}": root cause '
                    '"{root_cause}", category "{category}"'))
def investigates(
    world: World, user: str, method: str, ca: str, root_cause: str, category: str
) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.investigate_ca(
        ref, method=word(method), root_cause=root_cause, category=word(category)))


@when(parsers.parse('"{user}" records a "{method}" analysis of "{ca}" with the whys below: root '
                    'cause "{root_cause}", category "{category}"'))
def investigates_with_whys(
    world: World, user: str, method: str, ca: str, root_cause: str, category: str,
    datatable: list[list[str]],
) -> None:
    ref = world.ref(ca)
    whys = [row[0] for row in datatable]
    world.attempt(user, lambda app: app.corrective_actions.investigate_ca(
        ref, method=word(method), root_cause=root_cause, category=word(category), whys=whys))


@when(parsers.parse('"{user}" plans the "{kind}" action "{text}" for "{ca}", assigned to '
                    '"{assignee}" and due in {days:d} days'))
def plans(world: World, user: str, kind: str, text: str, ca: str, assignee: str,
          days: int) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(days),
                                                                   action_type=word(kind)))


@when(parsers.parse('"{user}" plans the "{kind}" action "{text}" for "{ca}", assigned to '
                    '"{assignee}", due {days:d} days ago'))
def plans_past_due(world: World, user: str, kind: str, text: str, ca: str, assignee: str,
                   days: int) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(-days),
                                                                   action_type=word(kind)))


@when(parsers.parse('"{user}" accepts a past due date, planning the "{kind}" action "{text}" for '
                    '"{ca}", assigned to "{assignee}", due {days:d} days ago, because "{reason}"'))
def plans_past_due_with_reason(world: World, user: str, kind: str, text: str, ca: str,
                               assignee: str, days: int, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.plan_ca(ref, action=text,
                                                                   assignee=assignee,
                                                                   due=days_from_today(-days),
                                                                   action_type=word(kind),
                                                                   past_due_reason=reason))


@when(parsers.parse('"{user}" approves the plan of "{ca}"'))
def approves(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.approve_ca(ref))


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" noting "{note}"'))
def completes(world: World, user: str, number: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note))


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" with the evidence file '
                    '"{name}", noting "{note}"'))
def completes_with_evidence(
    world: World, user: str, number: str, ca: str, name: str, note: str
) -> None:
    ref, path = world.ref(ca), world.files[name]
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=note,
                                                                           evidence=[path]))


@when(parsers.parse('"{user}" takes the evidence file "{name}" of "{ca}" back out'),
      target_fixture="taken")
def takes_evidence_out(world: World, user: str, name: str, ca: str) -> bytes | None:
    ref = world.ref(ca)
    result = world.attempt(user, lambda app: app.evidence.evidence_file(ref, name))
    return None if result is None else bytes(result[1])


@when(parsers.parse('someone with database access rewrites the kept file "{name}"'))
def rewrites_kept_file(world: World, name: str) -> None:
    import base64
    import re

    rows = query(world.target, "SELECT rowid, state FROM stored_events WHERE topic LIKE ?",
                 "%EvidenceStored")
    rowid, state = rows[0]
    forged = base64.b64encode(world.files[name].read_bytes()[::-1]).decode()
    query(world.target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          re.sub(rb'"content_b64":"[^"]*"', f'"content_b64":"{forged}"'.encode(), bytes(state)),
          rowid)


@when(parsers.parse('"{user}" completes action "{number}" of "{ca}" without a note'))
def completes_without_note(world: World, user: str, number: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.complete_action(ref, number, note=" "))


@when(parsers.parse('"{user}" extends action "{number}" of "{ca}" by {days:d} days because '
                    '"{reason}"'))
def extends(world: World, user: str, number: str, ca: str, days: int, reason: str) -> None:
    ref, due = _later_due(world, ca, number, days)
    world.attempt(user, lambda app: app.corrective_actions.extend_action(ref, number, due=due,
                                                                         reason=reason))


@when(parsers.parse('"{user}" extends action "{number}" of "{ca}" by {days:d} days without a '
                    'reason'))
def extends_without_reason(world: World, user: str, number: str, ca: str, days: int) -> None:
    ref, due = _later_due(world, ca, number, days)
    world.attempt(user, lambda app: app.corrective_actions.extend_action(ref, number, due=due,
                                                                         reason=""))


def _later_due(world: World, ca: str, number: str, days: int) -> tuple[str, str]:
    item = next(i for i in world.ca(ca).items if i.number == number)
    return world.ref(ca), (dt.date.fromisoformat(item.due) + dt.timedelta(days=days)).isoformat()


@when(parsers.parse('"{user}" verifies "{ca}" as effective: "{note}"'))
def verifies_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.verify_ca(ref, effective=True,
                                                                     note=note))


@when(parsers.parse('"{user}" verifies "{ca}" as not effective: "{note}"'))
def verifies_not_effective(world: World, user: str, ca: str, note: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.verify_ca(ref, effective=False,
                                                                     note=note))


@when(parsers.parse('"{user}" closes the corrective action "{ca}"'))
def closes_ca(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.close_ca(ref))


@when(parsers.parse('"{user}" cancels the corrective action "{ca}" because "{reason}"'))
def cancels_ca(world: World, user: str, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.cancel_ca(ref, reason=reason))


@when(parsers.parse('"{user}" reopens the corrective action "{ca}" because "{reason}"'))
def reopens_ca(world: World, user: str, ca: str, reason: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.reopen_ca(ref, reason=reason))


@when(parsers.parse('"{user}" reopens the corrective action "{ca}" without a reason'))
def reopens_ca_without_reason(world: World, user: str, ca: str) -> None:
    ref = world.ref(ca)
    world.attempt(user, lambda app: app.corrective_actions.reopen_ca(ref, reason=""))


# -- corrective actions: what the record shows ------------------------------------------------


@then(parsers.parse('the corrective action "{ca}" is "{status}"'))
def ca_status_is(world: World, ca: str, status: str) -> None:
    assert world.ca(ca).status == status


@then(parsers.parse('the corrective action "{ca}" is owned by "{owner}"'))
def ca_owned_by(world: World, ca: str, owner: str) -> None:
    assert world.ca(ca).owner == owner


@then(parsers.parse('the corrective action "{ca}" is in iteration {iteration:d}'))
def ca_iteration_is(world: World, ca: str, iteration: int) -> None:
    assert world.ca(ca).iteration == iteration


@then(parsers.parse('the current root cause of "{ca}" is "{root_cause}", category "{category}", '
                    'found by "{method}"'))
def current_root_cause(world: World, ca: str, root_cause: str, category: str,
                       method: str) -> None:
    current = world.ca(ca).root_cause
    assert current is not None
    assert (current.root_cause, current.category, current.method) == (
        root_cause, word(category), word(method))


@then(parsers.parse('the why chain of "{ca}" reads:'))
def why_chain_reads(world: World, ca: str, datatable: list[list[str]]) -> None:
    current = world.ca(ca).root_cause
    assert current is not None
    assert current.whys == [row[0] for row in datatable]


@then(parsers.parse('the analyses of "{ca}", oldest first, are:'))
def analyses_are(world: World, ca: str, datatable: list[list[str]]) -> None:
    analyses = world.ca(ca).analyses
    assert [(str(a.iteration), a.method, a.root_cause, a.by) for a in analyses] == [
        (r["iteration"], word(r["method"]), r["root cause"], r["by"]) for r in rows(datatable)]


@then(parsers.parse('the plan of "{ca}" lists:'))
def plan_lists(world: World, ca: str, datatable: list[list[str]]) -> None:
    items = world.ca(ca).items
    assert [(i.number, i.text, i.assignee, i.type, i.due, i.state, str(i.iteration))
            for i in items] == [
        (r["action"], r["text"], r["assignee"], word(r["type"]),
         days_from_today(int(r["due in days"])), r["state"], r["iteration"])
        for r in rows(datatable)]


@then(parsers.parse('the plan of "{ca}" is approved by "{user}", signed with meaning '
                    '"{meaning}"'))
def plan_approved_by(world: World, ca: str, user: str, meaning: str) -> None:
    view = world.ca(ca)
    current = [a for a in view.approvals if a.iteration == view.iteration and not a.voided]
    assert len(current) == 1
    signature = current[0].signature
    assert (signature.user_id, signature.meaning) == (user, meaning)
    assert signature.full_name == world.people[user]
    assert world.started - SLACK <= parse_utc(signature.signed_at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('the approval of "{ca}" by "{user}" is void'))
def approval_is_void(world: World, ca: str, user: str) -> None:
    approvals = [a for a in world.ca(ca).approvals if a.signature.user_id == user]
    assert approvals and all(a.voided for a in approvals)


@then(parsers.parse('the corrective action "{ca}" has {count:d} approvals, the earliest void'))
def approvals_count(world: World, ca: str, count: int) -> None:
    approvals = world.ca(ca).approvals
    assert len(approvals) == count
    assert [a.voided for a in approvals] == [True] + [False] * (count - 1)


@then(parsers.parse('action "{number}" of "{ca}" was done by "{user}", noting "{note}"'))
def action_done_by(world: World, number: str, ca: str, user: str, note: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.state, item.completed_by, item.note) == ("done", user, note)
    assert item.completed_at is not None
    assert world.started - SLACK <= parse_utc(item.completed_at) <= dt.datetime.now(dt.UTC)


@then(parsers.parse('action "{number}" of "{ca}" is still open'))
def action_still_open(world: World, number: str, ca: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.state, item.completed_by, item.note) == ("open", None, None)


@then(parsers.parse('action "{number}" of "{ca}" keeps the evidence file "{name}" unaltered'))
def evidence_kept(world: World, number: str, ca: str, name: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    content = world.files[name].read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    assert [(e.name, e.size, e.sha256) for e in item.evidence] == [(name, len(content), digest)]
    with reading(world.app):
        assert world.app.evidence.evidence_content(digest) == content


@then(parsers.parse('action "{number}" of "{ca}" was due {days:d} days ago, accepted because '
                    '"{reason}"'))
def action_accepted_past_due(world: World, number: str, ca: str, days: int, reason: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert (item.due, item.past_due_reason) == (days_from_today(-days), reason)


@then(parsers.parse('action "{number}" of "{ca}" is due in {days:d} days'))
def action_due_in(world: World, number: str, ca: str, days: int) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert item.due == days_from_today(days)


@then(parsers.parse('the due date of action "{number}" of "{ca}" was moved by "{user}" from '
                    '{old:d} to {new:d} days from today because "{reason}"'))
def due_date_moved(world: World, number: str, ca: str, user: str, old: int, new: int,
                   reason: str) -> None:
    item = next(i for i in world.ca(ca).items if i.number == number)
    assert [(x.from_, x.to, x.by, x.reason) for x in item.extensions] == [
        (days_from_today(old), days_from_today(new), user, reason)]


@then(parsers.parse('the latest verification of "{ca}" finds it "{verdict}", signed by "{user}" '
                    'meaning "{meaning}", noting "{note}"'))
def latest_verification(world: World, ca: str, verdict: str, user: str, meaning: str,
                        note: str) -> None:
    verifications = world.ca(ca).verifications
    assert verifications, "no effectiveness verification is recorded"
    latest = verifications[-1]
    assert verdict in ("effective", "not effective")
    assert latest.effective is (verdict == "effective")
    assert (latest.signature.user_id, latest.signature.meaning, latest.note) == (
        user, meaning, note)
    assert latest.signature.full_name == world.people[user]


@then(parsers.parse('the closure of the corrective action "{ca}" is signed by "{user}", meaning '
                    '"{meaning}"'))
def ca_closure_signed(world: World, ca: str, user: str, meaning: str) -> None:
    closure = world.ca(ca).closure
    assert closure is not None
    assert (closure.signature.user_id, closure.signature.meaning) == (user, meaning)
    assert closure.signature.full_name == world.people[user]


# -- refusals ---------------------------------------------------------------------------------


@then(parsers.parse('the command is refused under rule "{rule}"'))
def refused_under_rule(world: World, rule: str) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, RuleViolation), f"refused, but not by a rule: {refusal}"
    assert refusal.rule == rule, f"refused by {refusal.rule}, not {rule}: {refusal}"
    assert f"refused ({rule})" in str(refusal)


@then("the command is refused as invalid input")
def refused_as_invalid(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, InvalidInput), f"refused, but not as invalid input: {refusal}"


@then(parsers.parse('the file taken out is "{name}" byte for byte'))
def taken_out_whole(taken: bytes | None, world: World, name: str) -> None:
    world.expect_no_refusal()
    assert taken == world.files[name].read_bytes()


@then("the command is refused as an integrity failure")
def refused_as_integrity_failure(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, IntegrityFailure), f"refused, but not for integrity: {refusal}"


@then("the command is refused as not found")
def refused_as_not_found(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotFound), f"refused, but not as not found: {refusal}"


@then("the command is refused as not permitted")
def refused_as_not_permitted(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not as not permitted: {refusal}"
    assert refusal.rule is None, f"refused by rule {refusal.rule}: {refusal}"


@then("the command is refused because nobody is identified as acting")
def refused_as_anonymous(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not for want of a user: {refusal}"


@then("nothing was recorded")
def nothing_recorded(world: World) -> None:
    world.expect_no_refusal()
    assert world.events_before is not None, "no command was attempted"
    assert world.events() == world.events_before


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

