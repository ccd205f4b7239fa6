"""Role changes signed by an administrator (SPEC §9.2) against someone who can write the store:
a RoleGranted written straight into the event table (unsigned, signed with the writer's own
key, signed by an administrator whose role was revoked) fails `capa audit verify` (exit 6,
naming the event) and both bundle verifiers, and the application does not act on it; genuine
changes verify; stores of earlier releases report their unsigned changes as legacy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app import keyring
from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.audit import bundle as bundle_module
from capa.audit.bundle import export_bundle, verify_bundle
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.ledger import Ledger
from capa.audit.signature_walk import SignatureFailure, SignatureWalk
from capa.audit.signatures import now_iso, role_change_bytes, sign
from capa.audit.verification import verify_store
from capa.domain.errors import NotPermitted
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
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
_GRANTED = "capa.domain.user:User.RoleGranted"


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def private_key_of(app: CapaApplication, user: str) -> Any:
    stored = app.user_keys().get(user)
    return keyring.unwrap(stored.wrapped, PASSWORD, user, stored.key_id)


def insert_grant(app: CapaApplication, target: str, user: str, role: str, *,
                 signer: str | None, key: Any = None, actor: str | None = None) -> int:
    """INSERT a RoleGranted for `user` into the event table, as a store writer would: no code
    of capa's runs. `signer` names the administrator the forged signature claims (None: no
    signature); `key` signs it. Returns the forged event's version."""
    account = app.user(user)
    version = account.version + 1
    signed_at = now_iso()
    authorisation = None
    if signer is not None:
        message = role_change_bytes(user_id=user, change="grant", role=role, version=version,
                                    signed_at=signed_at, admin=signer)
        authorisation = {"admin": signer, "signed_at": signed_at,
                         "key_id": keyring.key_id(str(app.user(signer).public_key)),
                         "signature": sign(key, message)}
    state = {"timestamp": {"_type_": "datetime_iso",
                           "_data_": signed_at.replace("Z", "+00:00")},
             "actor": actor or signer or user, "role": role, "authorisation": authorisation}
    insert_event(target, account.id, version, _GRANTED, json.dumps(state, separators=(",", ":")))
    return version



def verify_cli(target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(target, ADMIN, ["audit", "verify"], cwd=cwd)


def assert_fails_at(done: subprocess.CompletedProcess[str], ref: str, version: int,
                    words: str) -> None:
    assert done.returncode == 6, done.stderr
    assert f"({ref} version {version})" in done.stderr and "position " in done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def assert_role_not_acted_on(target: str, user: str) -> None:
    """A fresh process of the application does not let `user` act as the forged admin, and
    writes nothing."""
    app = open_store(target)
    try:
        before = event_count(target)
        with app.acting_as(user, PASSWORD), pytest.raises(NotPermitted) as refused:
            app.identity.add_user("mallory", full_name="Mal Lory", roles=["admin"],
                                  password=PASSWORD)
        assert "signed administrator" in str(refused.value)
        assert event_count(target) == before
    finally:
        app.close()


# -- the genuine path ------------------------------------------------------------------------


def test_signed_grants_and_revokes_verify(store: CapaApplication, store_target: str,
                                          tmp_path: Path) -> None:
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.grant_role(REPORTER, "owner")
        store.identity.revoke_role(REPORTER, "owner")
    rows = [json.loads(r[4]) for r in event_rows(store_target) if "Role" in r[3]]
    assert rows and all(r["authorisation"]["admin"] == ADMIN for r in rows)
    done = verify_cli(store_target, tmp_path)
    assert done.returncode == 0, done.stderr
    # The administrator's own quality role (create_store) and these two.
    assert json.loads(done.stdout)["signatures"]["role_changes"] == {"signed": 3, "legacy": 0}
    text = run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path)
    assert text.returncode == 0


def test_a_role_change_without_the_password_again_is_refused(store: CapaApplication,
                                                             store_target: str) -> None:
    before = event_count(store_target)
    with store.acting_as(ADMIN), pytest.raises(NotPermitted) as refused:
        store.identity.grant_role(REPORTER, "owner")
    assert "password again" in str(refused.value)
    assert event_count(store_target) == before


def test_cli_grant_signs_with_the_password_of_the_environment(store: CapaApplication,
                                                              store_target: str,
                                                              tmp_path: Path) -> None:
    done = run_cli(store_target, ADMIN, ["user", "grant", REPORTER, "owner"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert verify_cli(store_target, tmp_path).returncode == 0


# -- forgeries by direct inserts --------------------------------------------------------------


def test_an_unsigned_grant_fails_verify(store: CapaApplication, store_target: str,
                                        tmp_path: Path) -> None:
    version = insert_grant(store, store_target, REPORTER, "admin", signer=None)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version,
                    "signed by no administrator")
    assert_role_not_acted_on(store_target, REPORTER)


def test_a_grant_signed_with_the_writers_own_key_fails_verify(store: CapaApplication,
                                                              store_target: str,
                                                              tmp_path: Path) -> None:
    own = private_key_of(store, REPORTER)
    version = insert_grant(store, store_target, REPORTER, "admin", signer=REPORTER, key=own)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version,
                    "who was not an administrator")
    assert_role_not_acted_on(store_target, REPORTER)


def test_a_grant_in_the_admins_name_signed_with_another_key_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    own = private_key_of(store, REPORTER)
    version = insert_grant(store, store_target, REPORTER, "admin", signer=ADMIN, key=own)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version, "forged")
    assert_role_not_acted_on(store_target, REPORTER)


def test_a_grant_signed_by_a_revoked_administrator_fails_verify(store: CapaApplication,
                                                                store_target: str,
                                                                tmp_path: Path) -> None:
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.grant_role(ENGINEER, "admin")
        store.identity.revoke_role(ENGINEER, "admin")
    # The engineer's key is real and was an administrator's; it no longer is.
    key = private_key_of(store, ENGINEER)
    version = insert_grant(store, store_target, REPORTER, "admin", signer=ENGINEER, key=key)
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}", version,
                    f"signed by {ENGINEER}, who was not an administrator")
    assert_role_not_acted_on(store_target, REPORTER)


def test_a_genuine_grant_replayed_to_another_version_fails_verify(store: CapaApplication,
                                                                  store_target: str,
                                                                  tmp_path: Path) -> None:
    """The administrator's signature binds the account version: copying a signed grant after
    a revoke does not bring the role back."""
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.grant_role(REPORTER, "owner")
        store.identity.revoke_role(REPORTER, "owner")
    granted = next(json.loads(r[4]) for r in event_rows(store_target)
                   if r[3] == _GRANTED and b'"owner"' in r[4])
    account = store.user(REPORTER)
    insert_event(store_target, account.id, account.version + 1, _GRANTED,
           json.dumps(granted, separators=(",", ":")))
    assert_fails_at(verify_cli(store_target, tmp_path), f"USER-{REPORTER}",
                    account.version + 1, "copied from another event")


def test_roles_a_new_user_is_added_with_are_bound_by_the_endorsement(
        store: CapaApplication, store_target: str) -> None:
    """A store writer who rewrites their own UserAdded (and the ledger with it) to hold admin
    breaks the administrator's endorsement of their key."""
    rows = event_rows(store_target)
    walk = SignatureWalk()
    with pytest.raises(SignatureFailure) as caught:
        for position, record, version, topic, state in rows:
            if topic.endswith("UserAdded") and f'"user_id":"{REPORTER}"'.encode() in state:
                state = state.replace(b'"roles":["reporter"]', b'"roles":["admin","reporter"]')
                assert b'"admin","reporter"' in state
            walk.feed(position, record.hex, version, topic, state)
    assert "forged" in str(caught.value) and caught.value.record == f"USER-{REPORTER}"


# -- bundles ---------------------------------------------------------------------------------


def test_bundle_verifiers_report_a_forged_grant(store: CapaApplication,
                                               monkeypatch: pytest.MonkeyPatch,
                                               store_target: str, tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()
    public = load_private_key(key).public_key()
    export_bundle(store, tmp_path / "clean", key, log, public)
    assert verify_bundle(tmp_path / "clean", [], None)["signatures"]["role_changes"] == {
        "signed": 1, "legacy": 0}
    clean = _script(tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert "role changes: 1 signed by an administrator, 0 legacy" in clean.stdout

    own = private_key_of(store, REPORTER)
    version = insert_grant(store, store_target, REPORTER, "admin", signer=REPORTER, key=own)
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
def test_golden_store_reports_its_role_changes_as_legacy(backend: str, tmp_path: Path) -> None:
    facts = json.loads((GOLDEN / "golden-v1.json").read_text())
    copy = tmp_path / "golden.db"
    shutil.copy(GOLDEN / "golden-v1.db", copy)
    app = open_store(str(copy))
    try:
        summary = verify_store(app, None, tmp_path / "none")["signatures"]
        assert summary["role_changes"] == {"signed": 0, "legacy": 3}
        # No administrator of that store holds a key: a change made now is unsigned too, and
        # the roles it gives are acted on (there is no signing anchor to hold them to).
        with app.acting_as(ADMIN, facts["password"]):
            app.identity.grant_role("tokafor", "owner")
        with app.acting_as("tokafor", facts["password"]):
            app.authorise("ca investigate")
        after = verify_store(app, None, tmp_path / "none")["signatures"]
        assert after["role_changes"] == {"signed": 0, "legacy": 4}
    finally:
        app.close()


def _script(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle)], capture_output=True,
                          text=True, check=False, timeout=120)
