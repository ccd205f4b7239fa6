"""Steps of features/identity: roles, separation of duties, signatures, lockout, account history.

The shared steps (the store with its quality team, corrective actions reaching a state,
refusals and "nothing was recorded") live in the other modules of tests/bdd/steps; the steps
here are those only identity needs. Everyone signs with their own password, `password_of(user)`
(tests/support/cast.py).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from capa.app.application import CapaApplication
from capa.app.views import HistoryEntry
from capa.audit.errors import TamperDetected
from capa.audit.signatures import now_iso
from capa.audit.verification import verify_store
from capa.domain.errors import CapaError, NotPermitted
from capa.domain.record import actor_id, record_uuid
from tests.support.backends import cli_env
from tests.support.cast import QUALITY_TEAM, password_of
from tests.support.reading import reading

WRONG_PASSWORD = "definitely-not-it"
TODAY = dt.datetime.now(dt.UTC).date()


def in_days(days: int) -> str:
    return (TODAY + dt.timedelta(days=days)).isoformat()


# -- what each attempted step does, by the words a scenario uses ------------------------------

NC_READY: dict[str, Callable[[CapaApplication, str], Any]] = {
    "contain": lambda app, ref: None,
    "assess": lambda app, ref: None,
    "amend": lambda app, ref: None,
    "cancel": lambda app, ref: None,
    "close": lambda app, ref: app.nonconformities.assess_nc(
        ref, impact=1, likelihood=2, capa_required=False,
        rationale="Isolated slip; the record was found and filed"),
    "reopen": lambda app, ref: app.nonconformities.cancel_nc(ref, reason="Raised twice by mistake"),
}

ATTEMPTS: dict[str, Callable[[CapaApplication, str], Any]] = {
    "contain": lambda app, ref: app.nonconformities.contain_nc(ref, action="Lot held",
                                                               disposition="quarantine"),
    "assess": lambda app, ref: app.nonconformities.assess_nc(ref, impact=3, likelihood=3,
                                                             capa_required=True),
    "amend": lambda app, ref: app.nonconformities.amend_nc(ref, field="lot", value="L2312",
                                                           reason="Lot misread at intake"),
    "cancel": lambda app, ref: (app.nonconformities.cancel_nc(ref, reason="Duplicate")
                                if ref.startswith("NC")
                                else app.corrective_actions.cancel_ca(ref, reason="Superseded")),
    "close": lambda app, ref: (app.nonconformities.close_nc(ref) if ref.startswith("NC")
                               else app.corrective_actions.close_ca(ref)),
    "reopen": lambda app, ref: app.nonconformities.reopen_nc(ref, reason="Recurred"),
    "investigate": lambda app, ref: app.corrective_actions.investigate_ca(
        ref, method="ishikawa", category="machine", root_cause="Worn gate insert"),
    "plan": lambda app, ref: app.corrective_actions.plan_ca(ref, action="Replace the insert",
                                                            assignee="lnguyen",
                                                            due=in_days(10),
                                                            action_type="corrective"),
    "approve": lambda app, ref: app.corrective_actions.approve_ca(ref),
    "complete": lambda app, ref: app.corrective_actions.complete_action(ref, "A1", note="Done"),
    "extend": lambda app, ref: app.corrective_actions.extend_action(ref, "A1", due=in_days(40),
                                                                    reason="Supplier delay"),
    "verify": lambda app, ref: app.corrective_actions.verify_ca(ref, effective=True,
                                                                note="No recurrence"),
}


def raise_one(app: CapaApplication) -> Any:
    return app.nonconformities.raise_nc(title="Burr on housing edge",
                                        description="Seen at final inspection",
                                        source="process", severity="minor")


def attempt_with(world: Any, user: str, secret: str | None, action: Callable[..., Any]) -> None:
    """Like World.attempt, with the password chosen by the scenario."""
    world.expect_no_refusal()
    world.events_before = world.events()
    try:
        with world.app.acting_as(user, secret):
            action(world.app)
    except CapaError as exc:
        world.refusal = exc


# -- given ------------------------------------------------------------------------------------


@given(parsers.parse('the nonconformity "{nc}" stands ready to "{action}"'))
def nc_ready(world: Any, nc: str, action: str) -> None:
    result = world.act("tokafor", raise_one)
    world.refs[nc] = result.id
    world.act("mhernandez", lambda app: NC_READY[action](app, result.id))


@given(parsers.parse('"{admin}" deactivated the account "{user}"'))
def deactivated(world: Any, admin: str, user: str) -> None:
    world.act(admin, lambda app: app.identity.deactivate_user(user))


@given(parsers.parse('"{admin}" granted "{user}" the role "{role}"'))
def granted(world: Any, admin: str, user: str, role: str) -> None:
    world.act(admin, lambda app: app.identity.grant_role(user, role))


@given(parsers.parse('"{admin}" revoked the role "{role}" from "{user}"'))
def revoked(world: Any, admin: str, role: str, user: str) -> None:
    world.act(admin, lambda app: app.identity.revoke_role(user, role))


@given(parsers.parse('"{user}" gave a wrong password once'))
def wrong_once(world: Any, user: str) -> None:
    with pytest.raises(NotPermitted):
        world.app.identity.authenticate(user, WRONG_PASSWORD)


# -- when -------------------------------------------------------------------------------------


@when(parsers.parse('"{user}" tries to raise a nonconformity'))
def tries_to_raise(world: Any, user: str) -> None:
    world.attempt(user, raise_one)


@when(parsers.parse('"{user}" tries to "{action}" the record "{alias}"'))
def tries_to(world: Any, user: str, action: str, alias: str) -> None:
    ref = world.ref(alias)
    world.attempt(user, lambda app: ATTEMPTS[action](app, ref))


@when(parsers.parse('"{user}" signs the approval of "{ca}" with her own password'))
def signs_with_own_password(world: Any, user: str, ca: str) -> None:
    ref = world.ref(ca)
    attempt_with(world, user, password_of(user), lambda app: app.corrective_actions.approve_ca(ref))


@when(parsers.parse('"{user}" signs the approval of "{ca}" with the password "{secret}"'))
def signs_with_password(world: Any, user: str, ca: str, secret: str) -> None:
    ref = world.ref(ca)
    attempt_with(world, user, secret, lambda app: app.corrective_actions.approve_ca(ref))


@when(parsers.parse('"{user}" signs the approval of "{ca}" without giving her password again'))
def signs_without_password(world: Any, user: str, ca: str) -> None:
    ref = world.ref(ca)
    attempt_with(world, user, None, lambda app: app.corrective_actions.approve_ca(ref))


@when(parsers.parse('"{user}" gives a wrong password {times:d} times'))
def wrong_passwords(world: Any, user: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(NotPermitted):
            world.app.identity.authenticate(user, WRONG_PASSWORD)


@when(parsers.parse('"{user}" is given a wrong password {times:d} times at the same moment'))
def wrong_passwords_at_once(world: Any, user: str, times: int) -> None:
    # Separate processes, as separate people or scripts would be, each its own connection.
    env = cli_env(user, CAPA_PASSWORD=WRONG_PASSWORD)
    guesses = [subprocess.Popen([sys.executable, "-m", "capa", "--db", world.target, "whoami"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(times)]
    for guess in guesses:
        _, err = guess.communicate(timeout=300)
        assert guess.returncode == 4 and "Traceback" not in err, err


@when(parsers.parse('"{admin}" unlocks the account "{user}"'))
def unlocks(world: Any, admin: str, user: str) -> None:
    world.act(admin, lambda app: app.identity.unlock_user(user))


@when(parsers.parse('the auditor reads the account history of "{user}"'),
      target_fixture="trail")
def reads_account_history(world: Any, user: str) -> list[HistoryEntry]:
    with world.app.acting_as("dbrooks", password_of("dbrooks")):
        return list(world.app.records.history(user))


# -- then -------------------------------------------------------------------------------------


@then(parsers.parse('the attempt is "{outcome}"'))
def attempt_outcome(world: Any, outcome: str) -> None:
    if outcome == "allowed":
        world.expect_no_refusal()
        assert world.events() > world.events_before, "an allowed step recorded nothing"
        return
    assert outcome == "refused", f"unknown outcome {outcome!r}"
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not for want of a role: {refusal}"
    assert world.events() == world.events_before, "a refused step recorded something"


@then(parsers.parse('"{user}" can read the record "{alias}" and its history'))
def can_read(world: Any, user: str, alias: str) -> None:
    ref = world.ref(alias)
    with world.app.acting_as(user):
        assert world.app.authorise("ca show") == user
        assert world.app.authorise("history") == user
        assert world.app.records.show(ref).id == ref
        assert world.app.records.history(ref)


@then("the signing is refused as not authenticated")
def refused_not_authenticated(world: Any) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not as unauthenticated: {refusal}"
    assert WRONG_PASSWORD not in str(refusal) and "not-her-password" not in str(refusal)


@then(parsers.parse('the signing is refused under rule "{rule}"'))
def signing_refused_under(world: Any, rule: str) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not as unauthenticated: {refusal}"
    assert refusal.rule == rule, f"refused by {refusal.rule}, not {rule}"


@then(parsers.parse('the history of "{ca}" shows the approval signed by "{name}" ("{user}") '
                    'meaning "{meaning}" at a UTC time'))
def approval_manifestation(world: Any, ca: str, name: str, user: str, meaning: str) -> None:
    with reading(world.app):
        entry = world.app.records.history(world.ref(ca))[-1]
    assert entry.event_type == "PlanApproved"
    assert entry.actor == user and entry.actor_name == name
    signature = entry.signature
    assert signature is not None
    assert (signature.user_id, signature.full_name, signature.meaning) == (user, name, meaning)
    assert signature.signed_at.endswith("Z")
    signed = dt.datetime.fromisoformat(signature.signed_at)
    assert abs(signed - world.started) < dt.timedelta(minutes=5)


@then(parsers.parse('the signature of that approval is bound to the content of "{ca}" as it '
                    'was signed'))
def signature_bound(world: Any, ca: str) -> None:
    ref = world.ref(ca)
    with reading(world.app):
        signature = world.app.records.history(ref)[-1].signature
    as_signed = world.app.repository.get(record_uuid(ref), version=signature.signed_version)
    assert signature.content_sha256 == as_signed.content_digest()


@then(parsers.parse('the account history of "{user}" ends with a failed attempt that holds no '
                    'password'))
def failed_attempt_recorded(world: Any, user: str) -> None:
    with reading(world.app):
        last = world.app.records.history(user)[-1]
    assert last.event_type == "LoginFailed" and last.actor == user
    assert [c.field for c in last.changes] == ["failed_attempts"]
    stored = world.app.recorder.select_events(record_uuid(f"USER-{user}"), desc=True, limit=1)
    assert b"not-her-password" not in stored[0].state


@then(parsers.parse('the account "{user}" is "{status}"'))
def account_status(world: Any, user: str, status: str) -> None:
    with world.app.acting_as("admin"):
        accounts = {a["user"]: a for a in world.app.identity.list_users()}
    assert accounts[user]["status"] == status


@then(parsers.parse('"{user}" cannot sign in even with the right password'))
def cannot_sign_in(world: Any, user: str) -> None:
    with pytest.raises(NotPermitted, match="locked"):
        world.app.identity.authenticate(user, password_of(user))


@then(parsers.parse('exactly {count:d} failed attempts of "{user}" are recorded'))
def failed_attempts_recorded(world: Any, user: str, count: int) -> None:
    with world.app.acting_as("dbrooks", password_of("dbrooks")):
        trail = world.app.records.history(user)
    assert [e.event_type for e in trail].count("LoginFailed") == count


@then(parsers.parse('"{user}" can sign in with the right password'))
def can_sign_in(world: Any, user: str) -> None:
    assert world.app.identity.authenticate(user, password_of(user)) == user


@then(parsers.parse("the account history lists, oldest first:"))
def account_history_lists(trail: list[HistoryEntry], datatable: list[list[str]]) -> None:
    header, *body = datatable
    expected = [dict(zip(header, row, strict=True)) for row in body]
    actual = [{"event": e.event_type, "by": f"{e.actor_name} ({e.actor})"} for e in trail]
    assert actual == expected
    assert all(e.time.endswith("Z") for e in trail)


@then("no event in the store holds a password in clear")
def no_password_in_clear(world: Any) -> None:
    secrets = [password_of(p).encode() for p in QUALITY_TEAM] + [WRONG_PASSWORD.encode()]
    notifications = world.app.recorder.select_notifications(start=None, limit=1_000_000)
    assert notifications
    for item in notifications:
        assert not any(s in item.state for s in secrets), f"a password is stored in {item.topic}"


# -- forged signatures (SPEC §9.2) ------------------------------------------------------------


@when(parsers.parse('someone who can write the store records an approval of "{ca}" in the name '
                    'of "{user}" without her password'))
def forges_approval(world: Any, ca: str, user: str) -> None:
    account = world.app.user(user)
    record: Any = world.app.repository.get(record_uuid(world.ref(ca)))
    token = actor_id.set(user)
    try:
        # Everything a real signature has, except a signature only her key could make.
        record.approve({"user_id": user, "full_name": account.full_name, "meaning": "approval",
                        "content_sha256": record.content_digest(),
                        "signed_version": record.version, "signed_at": now_iso(),
                        "algorithm": "Ed25519", "key_id": "0" * 16,
                        "signature": "A" * 86 + "=="})
        world.app.save(record)
    finally:
        actor_id.reset(token)
    world.paths["forged"] = f"{world.ref(ca)} version {record.version}"


@given(parsers.parse('someone who can write the store has given "{user}" the role "{role}" '
                     "without an administrator's signature"))
def forges_role(world: Any, user: str, role: str) -> None:
    account: Any = world.app.user(user)
    token = actor_id.set(user)
    try:
        # The library's own event, written past the service: no administrator signed it.
        account._role_granted(role=role, authorisation=None)
        world.app.save(account)
    finally:
        actor_id.reset(token)
    world.paths["forged"] = f"USER-{user} version {account.version}"


@when(parsers.parse('someone who can write the store unlocks the account "{user}" without an '
                    "administrator's signature"))
def forges_unlock(world: Any, user: str) -> None:
    account: Any = world.app.user(user)
    token = actor_id.set("admin")
    try:
        # The library's own event, written past the service: no administrator signed it.
        account._account_unlocked(authorisation=None)
        world.app.save(account)
    finally:
        actor_id.reset(token)
    world.paths["forged"] = f"USER-{user} version {account.version}"


@then("the integrity check of the store reports that unlock as signed by no administrator")
def integrity_reports_unsigned_unlock(world: Any) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert f"({world.paths['forged']})" in str(caught.value)
    assert "unlock of" in str(caught.value) and "signed by no administrator" in str(caught.value)


@when(parsers.parse('"{user}" tries to add the user "{new}"'))
def tries_to_add(world: Any, user: str, new: str) -> None:
    world.attempt(user, lambda app: app.identity.add_user(new, full_name="New Person",
                                                          roles=["admin"],
                                                          password="a-long-enough-password-1"))


@then("the integrity check of the store reports that role change as signed by no administrator")
def integrity_reports_unsigned_role(world: Any) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert f"({world.paths['forged']})" in str(caught.value)
    assert "signed by no administrator" in str(caught.value)


@then(parsers.parse('the history of "{ca}" shows that approval as signed by "{name}"'))
def history_shows_forged(world: Any, ca: str, name: str) -> None:
    with reading(world.app):
        last = world.app.records.history(world.ref(ca))[-1]
    assert last.signature is not None and last.signature.full_name == name


@then("the integrity check of the store reports that approval as forged")
def integrity_reports_forged(world: Any) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert f"({world.paths['forged']})" in str(caught.value)


# -- a lost password reset by an administrator (21 CFR 11.300(c)) ----------------------------

TEMPORARY_PASSWORD = "a-temporary-one-for-today"
CHOSEN_PASSWORD = "a-password-of-her-own-choosing"


@when(parsers.parse('"{admin}" resets the password of "{user}" because "{reason}"'))
def resets_password(world: Any, admin: str, user: str, reason: str) -> None:
    world.act(admin, lambda app: app.identity.reset_password(user, password=TEMPORARY_PASSWORD,
                                                             reason=reason))
    world.paths["reset"] = user


@then(parsers.parse('"{user}" cannot sign in with the old password'))
def old_password_refused(world: Any, user: str) -> None:
    with pytest.raises(NotPermitted):
        world.app.identity.authenticate(user, password_of(user))


@then(parsers.parse('"{user}" can sign in with the temporary password but may do nothing else '
                    "until choosing her own"))
def temporary_password_only_changes(world: Any, user: str) -> None:
    assert world.app.identity.login(user, TEMPORARY_PASSWORD)["user"] == user
    before = world.events()
    with world.app.acting_as(user, TEMPORARY_PASSWORD), \
            pytest.raises(NotPermitted, match="choose your own first"):
        world.app.queries.list_records("nc")
    assert world.events() == before


@when(parsers.parse('"{user}" chooses her own password'))
def chooses_password(world: Any, user: str) -> None:
    with world.app.acting_as(user, TEMPORARY_PASSWORD):
        world.app.identity.change_password(TEMPORARY_PASSWORD, CHOSEN_PASSWORD)


@then(parsers.parse('"{user}" can list the nonconformities with her own password'))
def lists_with_chosen(world: Any, user: str) -> None:
    with world.app.acting_as(world.app.identity.authenticate(user, CHOSEN_PASSWORD),
                             CHOSEN_PASSWORD):
        assert isinstance(world.app.queries.list_records("nc"), list)


@then(parsers.parse('the integrity check of the store passes with the reset signed by "{admin}"'))
def integrity_passes_with_reset(world: Any, admin: str) -> None:
    summary = verify_store(world.app, None, world.folder / "no.checkpoints")
    # The reset by the administrator and the password change by the user herself.
    assert summary["signatures"]["account_changes"]["signed"] >= 2, summary
    with world.app.acting_as("dbrooks", password_of("dbrooks")):
        trail = [e for e in world.app.records.history(world.paths["reset"])
                 if e.event_type == "PasswordReset"]
    assert [e.actor for e in trail] == [admin]


@when(parsers.parse('someone who can write the store resets the password of "{user}" to one of '
                    "their own, without an administrator's signature"))
def forges_reset(world: Any, user: str) -> None:
    from capa.app.accounts import new_password

    encoded, credential = new_password(TEMPORARY_PASSWORD)
    world.app.credentials.put_hash(user, credential, encoded)
    account: Any = world.app.user(user)
    token = actor_id.set(user)
    try:
        # The library's own event, written past the service: no administrator signed it.
        account._password_reset(credential=credential, public_key=None, reason="forged",
                                authorisation=None)
        world.app.save(account)
    finally:
        actor_id.reset(token)
    world.paths["forged"] = f"USER-{user} version {account.version}"


@then(parsers.parse('"{user}" cannot sign in with the password the writer chose'))
def forged_password_refused(world: Any, user: str) -> None:
    before = world.events()
    with pytest.raises(NotPermitted, match="nor an administrator signed"):
        world.app.identity.login(user, TEMPORARY_PASSWORD)
    assert world.events() == before


@then("the integrity check of the store reports that reset as signed by no administrator")
def integrity_reports_unsigned_reset(world: Any) -> None:
    with pytest.raises(TamperDetected) as caught:
        verify_store(world.app, None, world.folder / "no.checkpoints")
    assert f"({world.paths['forged']})" in str(caught.value)
    assert "password reset of" in str(caught.value)
    assert "signed by no administrator" in str(caught.value)
