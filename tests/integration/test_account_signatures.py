"""Deactivations, unlocks and password changes signed (SPEC §9.2) against someone who can write
the store: such an event written straight into the event table (unsigned, signed with the
writer's own key, replayed from another account or version) fails `capa audit verify` (exit 6,
naming the event) and both bundle verifiers, and the application does not let anyone in on it;
genuine changes verify; stores of earlier releases report their unsigned changes as legacy."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app import keyring
from capa.app.application import CapaApplication
from capa.app.passwords import hash_password
from capa.app.store import open_store
from capa.audit import bundle as bundle_module
from capa.audit.bundle import export_bundle, verify_bundle
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.ledger import Ledger
from capa.audit.signatures import account_change_bytes, now_iso, sign
from capa.audit.verification import verify_store
from capa.domain.errors import NotPermitted
from capa.domain.user import MAX_FAILED_ATTEMPTS, credential_of
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    OWNER,
    PASSWORD,
    REPORTER,
    assert_login_refused,
    cli_env,
    close_all,
    create_store,
    event_count,
    event_rows,
    insert_event,
    run_cli,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SCRIPT = ROOT / "scripts" / "verify_bundle.py"
_USER = "capa.domain.user:User."
TOPIC = {"deactivate": _USER + "UserDeactivated", "unlock": _USER + "AccountUnlocked",
         "passwd": _USER + "PasswordChanged"}
WRONG = "not-the-password-at-all"


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def private_key_of(app: CapaApplication, user: str) -> Any:
    stored = app.user_keys().get(user)
    return keyring.unwrap(stored.wrapped, PASSWORD, user, stored.key_id)


def lock(app: CapaApplication, user: str) -> None:
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(NotPermitted):
            app.identity.authenticate(user, WRONG)
    assert app.user(user).status == "locked"


def insert_change(app: CapaApplication, target: str, user: str, action: str, *,
                  signer: str | None, key: Any = None, credential: str | None = None,
                  actor: str | None = None) -> int:
    """INSERT an account change for `user` into the event table, as a store writer would: no
    code of capa's runs. `signer` names whom the forged signature claims (None: no signature);
    `key` signs it. Returns the forged event's version."""
    version = app.user(user).version + 1
    signed_at = now_iso()
    authorisation = None
    if signer is not None:
        message = account_change_bytes(user_id=user, action=action, version=version,
                                       signed_at=signed_at, signer=signer,
                                       credential=credential)
        authorisation = {"signer": signer, "signed_at": signed_at,
                         "key_id": keyring.key_id(str(app.user(signer).public_key)),
                         "signature": sign(key, message)}
    state: dict[str, Any] = {
        "timestamp": {"_type_": "datetime_iso", "_data_": signed_at.replace("Z", "+00:00")},
        "actor": actor or signer or user, "authorisation": authorisation,
        "class_version": 3 if action == "passwd" else 2}
    if credential is not None:
        state["credential"] = credential
    insert_event(target, app.user(user).id, version, TOPIC[action],
           json.dumps(state, separators=(",", ":")))
    return version



def verify_cli(target: str, cwd: Path, by: str = ENGINEER) -> subprocess.CompletedProcess[str]:
    """`capa audit verify` run by a user whom the forgery leaves alone."""
    return run_cli(target, by, ["audit", "verify"], cwd=cwd)


def assert_fails_at(done: subprocess.CompletedProcess[str], ref: str, version: int,
                    words: str) -> None:
    assert done.returncode == 6, done.stderr
    assert f"({ref} version {version})" in done.stderr and "position " in done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr



def rows_of(target: str, action: str) -> list[dict[str, Any]]:
    return [json.loads(r[4]) for r in event_rows(target) if r[3] == TOPIC[action]]


# -- the genuine path ------------------------------------------------------------------------


def test_signed_unlock_deactivation_and_password_change_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    lock(store, REPORTER)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.unlock_user(REPORTER)
        store.identity.deactivate_user(OWNER)
    with store.acting_as(ENGINEER, PASSWORD):
        store.identity.change_password(PASSWORD, "a-brand-new-secret-9")
    assert [r["authorisation"]["signer"] for a in ("unlock", "deactivate", "passwd")
            for r in rows_of(store_target, a)] == [ADMIN, ADMIN, ENGINEER]
    done = verify_cli(store_target, tmp_path, by=ADMIN)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signatures"]["account_changes"] == {"signed": 3, "legacy": 0}
    # What each person sees afterwards is as the signed changes say.
    again = open_store(store_target)
    try:
        assert again.identity.login(REPORTER, PASSWORD)["user"] == REPORTER
        assert again.identity.login(ENGINEER, "a-brand-new-secret-9")["user"] == ENGINEER
        with pytest.raises(NotPermitted, match="deactivated"):
            again.identity.login(OWNER, PASSWORD)
    finally:
        again.close()


def test_an_unlock_without_the_password_again_is_refused(store: CapaApplication,
                                                         store_target: str) -> None:
    lock(store, REPORTER)
    before = event_count(store_target)
    with store.acting_as(ADMIN), pytest.raises(NotPermitted) as refused:
        store.identity.unlock_user(REPORTER)
    assert "password again" in str(refused.value)
    assert event_count(store_target) == before
    assert store.user(REPORTER).status == "locked"


def test_a_deactivation_with_a_wrong_password_again_is_refused(store: CapaApplication,
                                                              store_target: str) -> None:
    before = event_count(store_target)
    with store.acting_as(ADMIN, WRONG), pytest.raises(NotPermitted):
        store.identity.deactivate_user(OWNER)
    # The wrong password counts towards the administrator's lockout, and nothing else changed.
    assert [r[3] for r in event_rows(store_target)[before:]] == [_USER + "LoginFailed"]
    assert store.user(OWNER).status == "active"


def test_cli_deactivate_and_unlock_sign_with_the_password_of_the_environment(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    lock(store, REPORTER)
    for args in (["user", "unlock", REPORTER], ["user", "deactivate", OWNER]):
        done = run_cli(store_target, ADMIN, args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    done = run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signatures"]["account_changes"]["signed"] == 2


# -- forgeries by direct inserts --------------------------------------------------------------


def test_an_unsigned_deactivation_of_an_administrator_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """The lock-out of an administrator by a store writer is not silent: verify names it, and
    the administrator is told why they are refused."""
    version = insert_change(store, store_target, ADMIN, "deactivate", signer=None,
                            actor=REPORTER)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{ADMIN}", version,
                    "signed by no administrator")
    assert_login_refused(store_target, ADMIN, PASSWORD, "no administrator signed")


def test_an_unlock_signed_with_the_writers_own_key_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    lock(store, REPORTER)
    own = private_key_of(store, REPORTER)
    version = insert_change(store, store_target, REPORTER, "unlock", signer=REPORTER, key=own)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version,
                    "who was not an administrator")
    # The forged unlock re-opens nothing: not even the right password is checked.
    assert_login_refused(store_target, REPORTER, PASSWORD, "not signed by an administrator")


def test_an_unlock_in_the_admins_name_signed_with_another_key_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    lock(store, REPORTER)
    own = private_key_of(store, REPORTER)
    version = insert_change(store, store_target, REPORTER, "unlock", signer=ADMIN, key=own)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version, "forged")
    assert_login_refused(store_target, REPORTER, PASSWORD, "not signed by an administrator")


def test_a_genuine_deactivation_replayed_to_another_account_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.deactivate_user(OWNER)
    genuine = rows_of(store_target, "deactivate")[0]
    version = store.user(ENGINEER).version + 1
    insert_event(store_target, store.user(ENGINEER).id, version, TOPIC["deactivate"],
           json.dumps(genuine, separators=(",", ":")))
    assert_fails_at(verify_cli(store_target, tmp_path, by=ADMIN), f"USER-{ENGINEER}",
                    version, "copied from another event")
    assert_login_refused(store_target, ENGINEER, PASSWORD, "no administrator signed")


def test_a_genuine_unlock_replayed_after_a_later_lock_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """The signature binds the account version: an old unlock does not open a new lock."""
    lock(store, REPORTER)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.unlock_user(REPORTER)
    lock(store, REPORTER)
    genuine = rows_of(store_target, "unlock")[0]
    version = store.user(REPORTER).version + 1
    insert_event(store_target, store.user(REPORTER).id, version, TOPIC["unlock"],
           json.dumps(genuine, separators=(",", ":")))
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version,
                    "copied from another event")
    assert_login_refused(store_target, REPORTER, PASSWORD, "not signed by an administrator")


def test_a_password_set_by_a_store_writer_lets_no_one_in(store: CapaApplication,
                                                         store_target: str,
                                                         tmp_path: Path) -> None:
    """A writer who puts their own hash in the credential table and a PasswordChanged naming
    it, signed with their own key, cannot log in as the administrator."""
    chosen = "the-writers-own-password"
    encoded = hash_password(chosen)
    store.credentials.put_hash(ADMIN, credential_of(encoded), encoded)
    own = private_key_of(store, REPORTER)
    version = insert_change(store, store_target, ADMIN, "passwd", signer=REPORTER, key=own,
                            credential=credential_of(encoded), actor=ADMIN)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{ADMIN}", version,
                    f"signed by {REPORTER}, not by that user")
    assert_login_refused(store_target, ADMIN, chosen,
                         "neither that user nor an administrator signed")


def test_a_password_change_signed_with_another_users_key_in_their_name_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    encoded = hash_password("the-writers-own-password")
    own = private_key_of(store, REPORTER)
    version = insert_change(store, store_target, ADMIN, "passwd", signer=ADMIN, key=own,
                            credential=credential_of(encoded))
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{ADMIN}", version, "forged")


def test_a_genuine_password_change_cannot_carry_another_credential(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """The user's signature binds the new credential and the new key: a writer who copies a
    signed change and swaps in their own hash breaks it (the copy is also signed with the key
    the change replaced, which the user no longer holds)."""
    with store.acting_as(ENGINEER, PASSWORD):
        store.identity.change_password(PASSWORD, "a-brand-new-secret-9")
    genuine = rows_of(store_target, "passwd")[0]
    assert genuine["public_key"] == store.user(ENGINEER).public_key
    genuine["credential"] = credential_of(hash_password("the-writers-own-password"))
    lock(store, REPORTER)  # any later event, so the copy lands on the engineer's next version
    version = store.user(ENGINEER).version + 1
    insert_event(store_target, store.user(ENGINEER).id, version, TOPIC["passwd"],
           json.dumps(genuine, separators=(",", ":")))
    assert_fails_at(verify_cli(store_target, tmp_path, by=ADMIN), f"USER-{ENGINEER}",
                    version, "with another key")


@pytest.mark.parametrize("authorisation", [
    "signed", ["admin"], {"signer": "\x1b[2J\x1b]0;owned\x07" + "x" * 5000, "signature": "=="},
    {"signer": "мария", "signed_at": "not a time", "key_id": "<b>", "signature": "!!"}])
def test_a_malformed_authorisation_fails_verify_without_a_traceback(
        store: CapaApplication, store_target: str, tmp_path: Path, authorisation: Any) -> None:
    version = store.user(OWNER).version + 1
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-01T00:00:00+00:00"},
             "actor": ADMIN, "authorisation": authorisation}
    insert_event(store_target, store.user(OWNER).id, version, TOPIC["deactivate"],
           json.dumps(state))
    done = verify_cli(store_target, tmp_path)
    assert_fails_at(done, f"USER-{OWNER}", version, "deactivation of")
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr


# -- bundles ---------------------------------------------------------------------------------


def test_bundle_verifiers_report_a_forged_unlock(store: CapaApplication,
                                                monkeypatch: pytest.MonkeyPatch,
                                                store_target: str, tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()
    public = load_private_key(key).public_key()
    lock(store, REPORTER)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.unlock_user(REPORTER)
    with store.acting_as(ENGINEER, PASSWORD):
        store.identity.change_password(PASSWORD, "a-brand-new-secret-9")
    export_bundle(store, tmp_path / "clean", key, log, public)
    assert verify_bundle(tmp_path / "clean", [], None)["signatures"]["account_changes"] == {
        "signed": 2, "legacy": 0}
    clean = _script(tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert "deactivations, unlocks and password changes: 2 signed, 0 legacy" in clean.stdout

    lock(store, REPORTER)
    own = private_key_of(store, REPORTER)
    version = insert_change(store, store_target, REPORTER, "unlock", signer=REPORTER, key=own)
    # An adversary who also holds the store key signs a checkpoint over the forged event.
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "forged", key, log, public)
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "forged", [], None)
    assert (caught.value.record, caught.value.version) == (f"USER-{REPORTER}", version)
    done = _script(tmp_path / "forged")
    assert done.returncode == 6
    assert f"record USER-{REPORTER} version {version}" in done.stderr
    assert "not an administrator" in done.stderr


# -- stores of earlier releases ----------------------------------------------------------------


@pytest.mark.sqlite_only("the golden store is a SQLite file of release 1")
def test_golden_store_reports_its_account_changes_as_legacy(backend: str,
                                                            tmp_path: Path) -> None:
    facts = json.loads((GOLDEN / "golden-v1.json").read_text())
    copy = tmp_path / "golden.db"
    shutil.copy(GOLDEN / "golden-v1.db", copy)
    with sqlite3.connect(copy) as db:
        stored = db.execute("SELECT COUNT(*) FROM stored_events WHERE topic IN (?, ?, ?)",
                            list(TOPIC.values())).fetchone()[0]
    app = open_store(str(copy))
    try:
        summary = verify_store(app, None, tmp_path / "none")["signatures"]
        assert summary["account_changes"] == {"signed": 0, "legacy": stored}
        # No administrator of that store holds a key: a change made now is unsigned too, and
        # is acted on (there is no signing anchor to hold it to).
        with app.acting_as(ADMIN, facts["password"]):
            app.identity.deactivate_user("tokafor")
        with pytest.raises(NotPermitted, match="deactivated"):
            app.identity.login("tokafor", facts["password"])
        after = verify_store(app, None, tmp_path / "none")["signatures"]
        assert after["account_changes"] == {"signed": 0, "legacy": stored + 1}
    finally:
        app.close()


def _script(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle)], capture_output=True,
                          text=True, check=False, timeout=120)


# -- accounts added past capa ------------------------------------------------------------------


@pytest.mark.parametrize("endorsed_by_own_key", [False, True])
def test_an_account_added_past_capa_can_do_nothing_and_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path,
        endorsed_by_own_key: bool) -> None:
    """A UserAdded written into the store by SQL, with a hash row of the writer's choosing:
    without a key, or with a key "endorsed" by the writer's own key in the administrator's
    name. The account can log in to nothing, reads included, and verify names it."""
    from uuid import NAMESPACE_URL, uuid5

    from capa.audit.signatures import endorsement_bytes

    chosen = "the-writers-own-password"
    encoded = hash_password(chosen)
    store.credentials.put_hash("intruder", credential_of(encoded), encoded)
    public_key, endorsement = None, None
    if endorsed_by_own_key:
        public_key = keyring.public_key_b64(keyring.new_key())
        endorsed_at = now_iso()
        message = endorsement_bytes(user_id="intruder", full_name="In Truder",
                                    roles=["quality"], public_key=public_key,
                                    endorsed_at=endorsed_at, admin=ADMIN)
        endorsement = {"admin": ADMIN, "endorsed_at": endorsed_at,
                       "key_id": keyring.key_id(str(store.user(ADMIN).public_key)),
                       "signature": sign(private_key_of(store, REPORTER), message)}
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-01T00:00:00+00:00"},
             "originator_topic": "capa.domain.user:User", "actor": ADMIN,
             "ref": "USER-intruder", "user_id": "intruder", "full_name": "In Truder",
             "roles": ["quality"], "credential": credential_of(encoded),
             "public_key": public_key, "endorsement": endorsement, "class_version": 2}
    record = uuid5(uuid5(NAMESPACE_URL, "urn:capa:record"), "USER-intruder")
    insert_event(store_target, record, 1, _USER + "UserAdded",
           json.dumps(state, separators=(",", ":")))
    words = "is forged" if endorsed_by_own_key else "no signing key"
    assert_fails_at(verify_cli(store_target, tmp_path), "USER-intruder", 1, words)
    before = event_count(store_target)
    for args in (["nc", "list"], ["nc", "raise", "--title", "T", "--description", "D",
                                  "--source", "process", "--severity", "minor"]):
        done = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, *args],
                              env=cli_env("intruder", CAPA_PASSWORD=chosen),
                              capture_output=True, text=True, check=False, cwd=tmp_path)
        assert done.returncode == 4, done.stderr
        assert "no role an administrator signed" in done.stderr
        assert "Traceback" not in done.stderr
    assert event_count(store_target) == before
