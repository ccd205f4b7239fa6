"""Identity in the application on a SQLite file: roles, authentication, signatures, sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.domain.errors import InvalidInput, NotFound, NotPermitted, RuleViolation
from capa.domain.record import record_uuid
from tests.support.backends import stored_bytes
from tests.support.cast import FULL_NAMES, PASSWORD, REPORTER
from tests.support.cast import QUALITY_TEAM as CAST
from tests.support.reading import reading

WRONG = "tr0ub4dor&3-wrong"


def due(days: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def app(store: Any) -> CapaApplication:
    created: CapaApplication = store.create(CAST)
    return created


def as_(app: CapaApplication, user: str, password: str | None = PASSWORD) -> Any:
    return app.acting_as(user, password)


def raised(app: CapaApplication) -> str:
    with as_(app, "tokafor"):
        return app.nonconformities.raise_nc(title="Cracked housing", description="Crack at boss B2",
                                            source="process", severity="major").id


def planned_ca(app: CapaApplication, owner: str = "apatel", assignee: str = "lnguyen") -> str:
    nc = raised(app)
    with as_(app, "mhernandez"):
        app.nonconformities.assess_nc(nc, impact=4, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Boss cracks",
                                            owner=owner, ncs=[nc]).id
    with as_(app, owner):
        app.corrective_actions.investigate_ca(ca, method="ishikawa", category="machine",
                                              root_cause="Worn insert")
        app.corrective_actions.plan_ca(ca, action="Replace insert", assignee=assignee, due=due(10),
                                       action_type="corrective")
    return ca


# -- the first administrator ------------------------------------------------------------------


def test_initialise_creates_the_store_and_its_first_administrator(store: Any) -> None:
    with pytest.raises(NotFound, match="no capa store"):
        open_store(store.target)
    created = store.create({"admin": ("Alex Admin", ["admin"])})
    with as_(created, "admin"):
        assert created.identity.whoami() == {"user": "admin", "full_name": "Alex Admin",
                                    "roles": ["admin"], "status": "active"}
        with pytest.raises(InvalidInput, match="already initialised"):
            created.identity.initialise("Again", admin="other", password=PASSWORD)
    # StoreInitialised and UserAdded are one save: positions 1 and 2.
    assert store.event_count() == 2


# -- roles ------------------------------------------------------------------------------------

WRITES: dict[str, Callable[[CapaApplication], Any]] = {
    "nc raise": lambda app: app.nonconformities.raise_nc(title="t", description="d",
                                                         source="process",
                                                         severity="minor"),
    "ca open": lambda app: app.corrective_actions.open_ca(title="t", problem="p", owner="apatel"),
    "user add": lambda app: app.identity.add_user("newbie", full_name="New Bie", roles=["reporter"],
                                                  password=PASSWORD),
    "user grant": lambda app: app.identity.grant_role("tokafor", "owner"),
    "user deactivate": lambda app: app.identity.deactivate_user("tokafor"),
}


@pytest.mark.parametrize("command", sorted(WRITES))
@pytest.mark.parametrize("user", ["dbrooks", "apatel", "nobody"])
def test_a_write_without_the_role_is_refused_and_writes_nothing(
    app: CapaApplication, store: Any, command: str, user: str
) -> None:
    before = store.event_count()
    with as_(app, user), pytest.raises(NotPermitted):
        WRITES[command](app)
    assert store.event_count() == before


def test_a_deactivated_user_writes_nothing(app: CapaApplication, store: Any) -> None:
    with as_(app, "admin"):
        app.identity.deactivate_user("tokafor")
    before = store.event_count()
    with as_(app, "tokafor"), pytest.raises(NotPermitted, match="deactivated"):
        WRITES["nc raise"](app)
    assert store.event_count() == before
    with pytest.raises(NotPermitted, match="deactivated"):
        app.identity.authenticate("tokafor", PASSWORD)


def test_an_administrator_cannot_remove_their_own_admin_role(app: CapaApplication,
                                                             store: Any) -> None:
    before = store.event_count()
    with as_(app, "admin"), pytest.raises(InvalidInput, match="own admin role"):
        app.identity.revoke_role("admin", "admin")
    assert store.event_count() == before
    with as_(app, "admin"):
        roles = {u["user"]: u["roles"] for u in app.identity.list_users()}
    assert "admin" in roles["admin"]


def test_a_record_like_id_is_refused_for_a_new_account(app: CapaApplication,
                                                       store: Any) -> None:
    before = store.event_count()
    for user in ("NC-2026-0001", "ca-2026-0042", "user-jchen"):
        with as_(app, "admin"), pytest.raises(InvalidInput, match="reads as a record id"):
            app.identity.add_user(user, full_name="Somebody", roles=["reporter"], password=PASSWORD)
    assert store.event_count() == before


def test_an_administrator_cannot_deactivate_themselves(app: CapaApplication) -> None:
    with as_(app, "admin"), pytest.raises(InvalidInput):
        app.identity.deactivate_user("admin")


def test_a_revoked_role_no_longer_permits(app: CapaApplication, store: Any) -> None:
    with as_(app, "admin"):
        app.identity.revoke_role("mhernandez", "quality")
        app.identity.grant_role("mhernandez", "reporter")
    nc = raised(app)
    with as_(app, "mhernandez"), pytest.raises(NotPermitted, match="may not nc assess"):
        app.nonconformities.assess_nc(nc, impact=1, likelihood=1, capa_required=True)


def test_the_owner_of_a_ca_must_be_a_user_of_the_store(app: CapaApplication) -> None:
    # An unknown user is "not found" (exit 3) everywhere, an owner included (SPEC §10).
    with as_(app, "mhernandez"), pytest.raises(NotFound, match="not a user of this store"):
        app.corrective_actions.open_ca(title="t", problem="p", owner="ghost")


def test_only_the_ca_owner_or_quality_investigates(app: CapaApplication, store: Any) -> None:
    nc = raised(app)
    with as_(app, "mhernandez"):
        app.nonconformities.assess_nc(nc, impact=2, likelihood=2, capa_required=True)
        ca = app.corrective_actions.open_ca(title="t", problem="p", owner="apatel", ncs=[nc]).id
    before = store.event_count()
    with as_(app, "lnguyen"), pytest.raises(NotPermitted, match="only its owner"):
        app.corrective_actions.investigate_ca(ca, method="other", category="man", root_cause="x")
    assert store.event_count() == before


def test_only_the_assignee_or_owner_completes_an_action(app: CapaApplication, store: Any) -> None:
    ca = planned_ca(app)
    with as_(app, "mhernandez"):
        app.corrective_actions.approve_ca(ca)
    before = store.event_count()
    for outsider in ("jchen", "mhernandez"):
        with as_(app, outsider), pytest.raises(NotPermitted, match="assignee"):
            app.corrective_actions.complete_action(ca, "A1", note="done")
    assert store.event_count() == before
    with as_(app, "lnguyen"):
        assert app.corrective_actions.complete_action(ca, "A1", note="done").status == "implemented"


# -- signatures -------------------------------------------------------------------------------


def test_a_signature_shows_the_full_name_and_is_bound_to_the_content(app: CapaApplication) -> None:
    ca = planned_ca(app)
    with as_(app, "mhernandez"):
        app.corrective_actions.approve_ca(ca)
    with reading(app):
        entry = app.records.history(ca)[-1]
    assert (entry.actor, entry.actor_name) == ("mhernandez", "Maria Hernandez")
    signature = entry.signature
    assert signature is not None
    assert (signature.user_id, signature.full_name, signature.meaning) == (
        "mhernandez", "Maria Hernandez", "approval")
    signed = app.repository.get(record_uuid(ca), version=signature.signed_version)
    assert signature.content_sha256 == signed.content_digest()


def test_signing_without_the_password_is_refused_under_r10(app: CapaApplication,
                                                           store: Any) -> None:
    ca = planned_ca(app)
    before = store.event_count()
    with as_(app, "mhernandez", None), pytest.raises(NotPermitted) as refused:
        app.corrective_actions.approve_ca(ca)
    assert refused.value.rule == "R10"
    assert store.event_count() == before


def test_signing_with_a_wrong_password_records_only_the_failed_attempt(
    app: CapaApplication, store: Any
) -> None:
    ca = planned_ca(app)
    before = store.event_count()
    with as_(app, "mhernandez", WRONG), pytest.raises(NotPermitted) as refused:
        app.corrective_actions.approve_ca(ca)
    assert WRONG not in str(refused.value)
    assert store.event_count() == before + 1
    with reading(app):
        assert app.records.history("mhernandez")[-1].event_type == "LoginFailed"
    with as_(app, "dbrooks"), reading(app):
        assert app.records.show(ca).status == "planned"


def test_the_owner_who_is_also_quality_still_cannot_approve(app: CapaApplication) -> None:
    ca = planned_ca(app, owner="jchen")
    with as_(app, "jchen"), pytest.raises(RuleViolation) as refused:
        app.corrective_actions.approve_ca(ca)
    assert refused.value.rule == "R2"


# -- authentication and lockout ---------------------------------------------------------------


def test_five_wrong_passwords_lock_and_an_admin_unlocks(app: CapaApplication, store: Any) -> None:
    for attempt in range(1, 6):
        with pytest.raises(NotPermitted) as refused:
            app.identity.authenticate("apatel", WRONG)
        assert ("locked" in str(refused.value)) == (attempt == 5)
    with pytest.raises(NotPermitted, match="locked"):
        app.identity.authenticate("apatel", PASSWORD)
    with as_(app, "apatel"), pytest.raises(NotPermitted, match="locked"):
        app.corrective_actions.investigate_ca("CA-2026-0001", method="other", category="man",
                                              root_cause="x")
    with reading(app):
        events = [e.event_type for e in app.records.history("apatel")]
    assert events == ["UserAdded"] + ["LoginFailed"] * 5 + ["AccountLocked"]
    with as_(app, "admin"):
        app.identity.unlock_user("apatel")
    assert app.identity.authenticate("apatel", PASSWORD) == "apatel"


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(app: CapaApplication) -> None:
    with pytest.raises(NotPermitted) as unknown:
        app.identity.authenticate("ghost", PASSWORD)
    with pytest.raises(NotPermitted) as wrong:
        app.identity.authenticate("apatel", WRONG)
    assert str(unknown.value) == str(wrong.value)


def test_changing_the_password_checks_the_current_one(app: CapaApplication) -> None:
    with as_(app, "tokafor"):
        with pytest.raises(NotPermitted):
            app.identity.change_password(WRONG, "a-brand-new-secret")
        with pytest.raises(InvalidInput, match="at least"):
            app.identity.change_password(PASSWORD, "short")
        app.identity.change_password(PASSWORD, "a-brand-new-secret")
    assert app.identity.authenticate("tokafor", "a-brand-new-secret") == "tokafor"
    with pytest.raises(NotPermitted):
        app.identity.authenticate("tokafor", PASSWORD)


# -- sessions ---------------------------------------------------------------------------------


def test_a_session_token_is_stored_only_as_its_digest(app: CapaApplication, store: Any) -> None:
    opened = app.identity.login("apatel", PASSWORD)
    token = opened["token"]
    assert app.identity.resume_session("apatel", token) == "apatel"
    with pytest.raises(NotPermitted):
        app.identity.resume_session("apatel", token + "x")
    with pytest.raises(NotPermitted):
        app.identity.resume_session("lnguyen", token)
    raw = b"".join(row[0] for row in store.rows("SELECT state FROM stored_events"))
    assert token.encode() not in raw
    app.identity.logout("apatel", token)
    with pytest.raises(NotPermitted, match="ended"):
        app.identity.resume_session("apatel", token)


def test_a_session_expires_after_the_maximum_age(app: CapaApplication,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = app.identity.login("apatel", PASSWORD)["token"]
    monkeypatch.setattr("capa.app.identity.SESSION_MAX_AGE", dt.timedelta(0))
    with pytest.raises(NotPermitted, match="8 hours"):
        app.identity.resume_session("apatel", token)


def test_locking_or_a_new_password_ends_sessions(app: CapaApplication) -> None:
    token = app.identity.login("tokafor", PASSWORD)["token"]
    with as_(app, "tokafor"):
        app.identity.change_password(PASSWORD, "a-brand-new-secret")
    with pytest.raises(NotPermitted):
        app.identity.resume_session("tokafor", token)


# -- account history and secrecy --------------------------------------------------------------


def test_the_account_history_shows_full_names_and_no_hash(app: CapaApplication) -> None:
    with as_(app, "admin"):
        app.identity.grant_role("tokafor", "owner")
    with pytest.raises(NotPermitted):
        app.identity.authenticate("tokafor", WRONG)
    with reading(app):
        trail = app.records.history("TOKAFOR")
    assert [(e.event_type, e.actor_name) for e in trail] == [
        ("UserAdded", "Alex Admin"), ("RoleGranted", "Alex Admin"),
        ("LoginFailed", FULL_NAMES[REPORTER])]
    text = str([e.model_dump() for e in trail])
    assert "scrypt$" not in text and "password" not in text


def test_history_of_an_unknown_user_is_not_found(app: CapaApplication) -> None:
    with pytest.raises(NotFound), reading(app):
        app.records.history("ghost")


def test_no_password_appears_in_any_stored_byte(app: CapaApplication, store: Any) -> None:
    ca = planned_ca(app)
    with as_(app, "mhernandez"):
        app.corrective_actions.approve_ca(ca)
    with pytest.raises(NotPermitted):
        app.identity.authenticate("apatel", WRONG)
    app.close()
    raw = stored_bytes(store.target)
    assert PASSWORD.encode() not in raw
    assert WRONG.encode() not in raw


def test_the_user_list_holds_no_hash(app: CapaApplication) -> None:
    with as_(app, "dbrooks"):
        users = app.identity.list_users()
    assert [u["user"] for u in users] == sorted(CAST)
    assert all("scrypt" not in str(u) and "password_hash" not in u for u in users)
    with as_(app, "tokafor"), pytest.raises(NotPermitted):
        app.identity.list_users()


def test_an_unknown_user_costs_the_same_password_work(app: CapaApplication,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import capa.app.accounts as service

    checked: list[str] = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password",
                        lambda password, encoded: checked.append(encoded) or real(password,
                                                                                   encoded))
    with pytest.raises(NotPermitted):
        app.identity.authenticate("ghost", PASSWORD)
    assert len(checked) == 1 and checked[0].startswith("scrypt$")
