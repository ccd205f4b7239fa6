"""The user account record, password hashing and the role table, without a store."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from capa.app.passwords import MIN_LENGTH, check_strength, hash_password, verify_password
from capa.app.permissions import (
    PERMISSIONS,
    SIGNING_COMMANDS,
    allowed_roles,
    permits,
)
from capa.domain.errors import InvalidInput, NotPermitted
from capa.domain.record import actor_id, record_uuid
from capa.domain.user import (
    MAX_FAILED_ATTEMPTS,
    Role,
    User,
    is_user_id,
    user_ref,
    valid_user_id,
)

HASH = "scrypt$16384$8$1$c2FsdA==$a2V5"


@pytest.fixture(autouse=True)
def acting_admin() -> Iterator[None]:
    token = actor_id.set("admin")
    yield
    actor_id.reset(token)


def new_user(roles: list[str] | None = None) -> User:
    return User.add(user_id="apatel", full_name="Anil Patel", roles=roles or ["owner"],
                    credential=HASH)


# -- ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, canonical", [
    ("apatel", "apatel"), ("APatel", "apatel"), (" j.chen ", "j.chen"), ("r_k-2", "r_k-2"),
])
def test_user_ids_are_lower_case_and_validated(raw: str, canonical: str) -> None:
    assert valid_user_id(raw) == canonical
    assert is_user_id(raw)


@pytest.mark.parametrize("raw", ["", "a", "1abc", "-abc", "a b", "a@b", "x" * 33, "ab/c"])
def test_malformed_user_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid user id"):
        valid_user_id(raw)
    assert not is_user_id(raw)


def test_user_records_cannot_collide_with_nc_or_ca_ids() -> None:
    assert user_ref("apatel") == "USER-apatel"
    assert record_uuid(user_ref("nc-2026-0001")) != record_uuid("NC-2026-0001")


# -- the record -------------------------------------------------------------------------------


def test_a_user_is_added_with_sorted_unique_roles() -> None:
    user = new_user(["quality", "owner", "quality"])
    assert (user.ref, user.user_id, user.full_name) == ("USER-apatel", "apatel", "Anil Patel")
    assert user.roles == ["owner", "quality"]
    assert user.status == "active" and user.failed_attempts == 0
    event = user.collect_events()[0]
    assert type(event).__name__ == "UserAdded" and event.actor == "admin"


@pytest.mark.parametrize("roles", [[], ["superuser"]])
def test_a_user_needs_known_roles(roles: list[str]) -> None:
    with pytest.raises(InvalidInput):
        User.add(user_id="apatel", full_name="Anil Patel", roles=roles, credential=HASH)


def test_a_user_needs_a_full_name() -> None:
    with pytest.raises(InvalidInput, match="full name"):
        User.add(user_id="apatel", full_name="  ", roles=["owner"], credential=HASH)


def test_the_credential_is_kept_out_of_the_record_fields() -> None:
    user = new_user()
    assert "credential" not in user.fields() and "password_hash" not in user.fields()
    assert HASH not in user.content_digest()


def test_roles_are_granted_and_revoked() -> None:
    user = new_user()
    user.grant("quality")
    user.revoke("owner")
    assert user.roles == ["quality"]
    assert [type(e).__name__ for e in user.collect_events()] == [
        "UserAdded", "RoleGranted", "RoleRevoked"]


def test_granting_a_held_role_or_revoking_a_missing_one_is_refused() -> None:
    user = new_user()
    with pytest.raises(InvalidInput, match="already has"):
        user.grant("owner")
    with pytest.raises(InvalidInput, match="does not have"):
        user.revoke("auditor")


def test_five_failures_in_a_row_lock_the_account() -> None:
    user = new_user()
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        user.login_failed()
    assert user.status == "active"
    user.login_failed()
    assert user.status == "locked"
    names = [type(e).__name__ for e in user.collect_events()]
    assert names.count("LoginFailed") == MAX_FAILED_ATTEMPTS
    assert names[-1] == "AccountLocked"
    with pytest.raises(NotPermitted, match="locked"):
        user.require_usable()


def test_a_failed_attempt_event_carries_no_payload() -> None:
    user = new_user()
    user.login_failed()
    event = user.collect_events()[-1]
    payload = {k for k in vars(event) if k not in ("originator_id", "originator_version",
                                                    "timestamp", "actor")}
    assert payload == set()


def test_a_correct_password_clears_the_failure_count_and_writes_nothing_when_zero() -> None:
    user = new_user()
    user.collect_events()
    user.password_verified()
    assert user.collect_events() == []
    user.login_failed()
    user.password_verified()
    assert user.failed_attempts == 0
    assert type(user.collect_events()[-1]).__name__ == "FailedAttemptsCleared"


def test_unlock_resets_the_account() -> None:
    user = new_user()
    with pytest.raises(InvalidInput, match="not locked"):
        user.unlock()
    for _ in range(MAX_FAILED_ATTEMPTS):
        user.login_failed()
    user.unlock()
    assert (user.status, user.failed_attempts) == ("active", 0)
    user.require_usable()


def test_a_deactivated_account_cannot_be_used_or_changed() -> None:
    user = new_user()
    user.deactivate()
    assert not user.active
    with pytest.raises(NotPermitted, match="deactivated"):
        user.require_usable()
    with pytest.raises(InvalidInput, match="deactivated"):
        user.grant("quality")
    with pytest.raises(InvalidInput, match="deactivated"):
        user.deactivate()


def test_sessions_are_kept_by_token_digest_and_end_on_logout_or_password_change() -> None:
    user = new_user()
    user.log_in("a" * 64)
    user.log_in("b" * 64)
    assert user.session_started("a" * 64) is not None
    user.log_out("a" * 64)
    assert user.session_started("a" * 64) is None
    user.change_password(HASH.replace("a2V5", "bmV3"))
    assert user.sessions == {}


# -- passwords --------------------------------------------------------------------------------


def test_a_password_hash_is_salted_scrypt_with_its_parameters() -> None:
    encoded = hash_password("correct horse")
    scheme, n, r, p, salt, key = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
    assert "correct horse" not in encoded
    assert hash_password("correct horse") != encoded  # a new salt each time


def test_a_password_verifies_only_against_its_own_hash() -> None:
    encoded = hash_password("correct horse")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsf", encoded)
    assert not verify_password("correct horse", "md5$abc")
    assert not verify_password("correct horse", "scrypt$x$8$1$AA==$AA==")


def test_short_passwords_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_strength("short1")
    assert "short1" not in str(refused.value)
    assert str(MIN_LENGTH) in str(refused.value)
    with pytest.raises(InvalidInput):
        hash_password("x" * (MIN_LENGTH - 1))


# -- the role table ---------------------------------------------------------------------------


def test_every_role_in_the_table_exists() -> None:
    known = {r.value for r in Role}
    assert all(roles <= known for roles in PERMISSIONS.values())


def test_auditors_may_only_read() -> None:
    writes = {c for c, roles in PERMISSIONS.items() if "auditor" in roles} - {
        "nc show", "nc list", "ca show", "ca list", "history", "overdue", "report",
        "dashboard", "export", "audit verify", "audit export", "audit prove", "audit vkey",
        "audit consistency", "user list", "user token list", "user passwd", "login", "logout",
        "whoami", "evidence list", "evidence get", "store info", "audit review",
        "management-review", "webhook list", "webhook deliveries"}
    assert writes == set()
    # An auditor reads the webhooks and their deliveries, but never runs a delivery pass
    # (which records each attempt) nor adds or removes a webhook.
    assert not any(permits(["auditor"], f"webhook {c}") for c in ("add", "remove", "deliver"))
    # An auditor reviews the audit trail, but signing the review records an event.
    assert permits(["auditor"], "audit review")
    assert not permits(["auditor"], "audit review --sign")
    # Auditors never change the store, not even by a checkpoint or a rebuild (SPEC §9.6).
    assert not permits(["auditor"], "audit checkpoint")
    assert not permits(["auditor"], "readmodels rebuild")


def test_signing_commands_are_quality_only() -> None:
    records = SIGNING_COMMANDS - {"audit review --sign"}
    assert all(allowed_roles(c) == {"quality"} for c in records)
    # The audit-trail review is signed by the quality unit or an administrator, never an
    # auditor (auditors never change the store, SPEC §9.6).
    assert allowed_roles("audit review --sign") == {"quality", "admin"}


def test_unknown_commands_are_allowed_to_nobody_and_each_audit_command_has_its_row() -> None:
    assert allowed_roles("nc destroy") == frozenset()
    assert allowed_roles("audit destroy") == frozenset()
    assert permits(["auditor"], "audit verify")
    assert not permits(["admin"], "ca approve")


def test_account_changes_ask_for_a_signature_only_once_the_domain_accepts_them() -> None:
    """Deactivation, unlock and password change carry the signature `authorise` gives for the
    version they make; a refused change asks for none."""
    asked: list[tuple[str, int]] = []

    def authorise(action: str, version: int) -> dict[str, str]:
        asked.append((action, version))
        return {"signer": "admin", "action": action}

    user = new_user()
    with pytest.raises(InvalidInput, match="not locked"):
        user.unlock(authorise)
    assert asked == []
    for _ in range(MAX_FAILED_ATTEMPTS):
        user.login_failed()
    user.unlock(authorise)
    user.change_password("sha256:" + "0" * 64, authorise)
    user.deactivate(authorise)
    with pytest.raises(InvalidInput, match="deactivated"):
        user.deactivate(authorise)
    events = user.collect_events()
    assert asked == [("unlock", user.version - 2), ("passwd", user.version - 1),
                     ("deactivate", user.version)]
    assert [getattr(e, "authorisation", None) for e in events[-3:]] == [
        {"signer": "admin", "action": a} for a, _ in asked]


@pytest.mark.parametrize(("name", "state"), [
    ("UserDeactivated", {}), ("AccountUnlocked", {}),
    ("PasswordChanged", {"password_hash": HASH}),
    ("PasswordChanged", {"credential": "sha256:ab", "class_version": 2})])
def test_unsigned_account_changes_of_earlier_releases_are_read_with_no_signature(
        name: str, state: dict[str, object]) -> None:
    import json
    import uuid

    from eventsourcing.persistence import (
        DatetimeAsISO,
        JSONTranscoder,
        Mapper,
        StoredEvent,
        UUIDAsHex,
    )

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO()):
        transcoder.register(transcoding)
    stored = {"timestamp": {"_type_": "datetime_iso", "_data_": "2025-01-01T00:00:00+00:00"},
              "actor": "admin", **state}
    event = Mapper(transcoder=transcoder).to_domain_event(StoredEvent(
        originator_id=uuid.uuid4(), originator_version=2, topic=f"capa.domain.user:User.{name}",
        state=json.dumps(stored).encode()))
    assert event.authorisation is None  # type: ignore[attr-defined]
