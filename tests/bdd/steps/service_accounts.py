"""Steps of features/identity/service_accounts.feature: a machine's service account and its API
tokens (SPEC §11). The store with its quality team, "nothing was recorded" and the refusal
steps are shared (tests/bdd/steps)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from capa.audit.errors import TamperDetected
from capa.audit.verification import verify_store
from capa.domain.errors import CapaError, NotPermitted
from capa.domain.record import actor_id
from tests.support.cast import password_of


@given(parsers.parse('"{admin}" created the service account "{account}" for "{role}" work, '
                     "with a token"))
def service_account_with_token(world: Any, admin: str, account: str, role: str) -> None:
    def create(app: Any) -> None:
        app.service_accounts.add_service(account, full_name=f"Machine {account}", roles=[role])
        world.paths["token"] = app.service_accounts.issue_token(account, label="intake")["token"]

    world.act(admin, create)
    world.paths["account"] = account


@given(parsers.parse('"{admin}" revoked that token because "{reason}"'))
def revoked_token(world: Any, admin: str, reason: str) -> None:
    world.act(admin, lambda app: app.service_accounts.revoke_token(world.paths["account"], "T1",
                                                                   reason=reason))


@when(parsers.parse('someone who can write the store gives "{account}" a token of their own'))
def forges_token(world: Any, account: str) -> None:
    user: Any = world.app.user(account)
    token = f"capa_{account}_{'5a' * 32}"
    actor = actor_id.set("admin")
    try:
        # The library's own event, written past the service: no administrator signed it.
        user._token_issued(token_id="T2", token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                           label=None, expires_on=None, authorisation=None)
        world.app.save(user)
    finally:
        actor_id.reset(actor)
    world.paths["forged"] = f"USER-{account} version {user.version}"
    world.paths["forged token"] = token


@when(parsers.parse("the machine raises a nonconformity with {which} token"))
def machine_raises(world: Any, which: str) -> None:
    token = world.paths["forged token" if which == "that" else "token"]
    world.expect_no_refusal()
    world.events_before = world.events()
    try:
        machine = world.app.service_accounts.resume_token(token)
        with world.app.acting_as(machine):
            world.refs["machine NC"] = world.app.nonconformities.raise_nc(
                title="Short shot on cavity 4", description="Reported by the line controller",
                source="process", severity="minor").id
    except CapaError as exc:
        world.refusal = exc


@then(parsers.parse('the nonconformity is recorded as reported by "{account}"'))
def reported_by(world: Any, account: str) -> None:
    world.expect_no_refusal()
    with world.app.acting_as("dbrooks", password_of("dbrooks")):
        shown = world.app.records.show(world.refs["machine NC"])
        trail = world.app.records.history(world.refs["machine NC"])
    assert shown.reported_by == account  # type: ignore[union-attr]
    assert trail[0].actor == account


@then(parsers.parse('"{account}" cannot sign in with a password, having none'))
def no_password(world: Any, account: str) -> None:
    before = world.events()
    for attempt in ("", password_of("admin"), "any-password-at-all"):
        with pytest.raises(NotPermitted, match="service account"):
            world.app.identity.login(account, attempt)
    assert world.events() == before


@then("the integrity check of the store reports that token as issued by no administrator")
def integrity_reports_forged_token(world: Any) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert f"({world.paths['forged']})" in str(caught.value)
    assert "API token" in str(caught.value) and "signed by no administrator" in str(caught.value)
