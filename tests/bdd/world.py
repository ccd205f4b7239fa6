"""What one scenario of features/ has built so far (`World`), and the words and records the
steps of tests/bdd/steps share: dates as a feature says them, and records driven to a state.

Defaults used where a Given step does not name the person (tests/support/cast.py):
  mhernandez  quality manager: assesses, opens CAs, approves, closes
  tokafor     reporter: raises and contains NCs
  lnguyen     technician: assignee of the action items a CA is given on its way to a state
  rkowalski   verifier of effectiveness
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.app.views import CorrectiveActionView, NonconformityView
from capa.domain.errors import CapaError
from tests.support.backends import discard_target, new_target, store_exists
from tests.support.cast import QUALITY_MANAGER, REPORTER, TECHNICIAN, VERIFIER, password_of
from tests.support.reading import reading

#: Field names as a quality manager says them, and as the record calls them.
FIELDS = {
    "external reference": "external_ref",
    "detected on": "detected_on",
    "reported by": "reported_by",
}

#: One slack second either side when checking that a time falls within the scenario.
SLACK = dt.timedelta(seconds=1)


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
