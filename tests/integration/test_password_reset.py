"""An administrator's reset of a lost password (21 CFR 11.300(c), SPEC §9.2): a temporary
password the user must change before anything else, and a new signing key that only the
administrator's signature over the reset makes the user's. Against someone who can write the
store: a reset written straight into the event table (unsigned, signed with another key, copied
from another account or with another credential) fails `capa audit verify` and both bundle
verifiers (exit 6, naming the event) and lets no one in; every refusal writes nothing."""

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
from capa.app.passwords import hash_password
from capa.app.store import open_store
from capa.audit import bundle as bundle_module
from capa.audit.bundle import export_bundle, verify_bundle
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.ledger import Ledger
from capa.audit.signatures import now_iso, password_reset_bytes, sign
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
    query,
    run_cli,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_bundle.py"
GOLDEN = ROOT / "tests" / "golden"
RESET = "capa.domain.user:User.PasswordReset"
TEMPORARY = "temporary-secret-for-today-1"
CHOSEN = "the-engineers-own-choice-2"


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def closed_nc(app: CapaApplication, signer: str, password: str, title: str) -> str:
    """An NC raised, assessed and closed with `signer`'s electronic signature."""
    with app.acting_as(REPORTER, PASSWORD):
        ref = app.nonconformities.raise_nc(title=title, description="Seen at goods-in",
                                           source="supplier", severity="minor").id
    with app.acting_as(signer, password):
        app.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                      rationale="cosmetic")
        app.nonconformities.close_nc(ref)
    return ref


def reset(app: CapaApplication, user: str = ENGINEER, temporary: str = TEMPORARY) -> None:
    with app.acting_as(ADMIN, PASSWORD):
        app.identity.reset_password(user, password=temporary, reason="lost the password")


def verified(target: str, cwd: Path) -> dict[str, Any]:
    done = run_cli(target, ADMIN, ["audit", "verify"], cwd=cwd)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def private_key_of(app: CapaApplication, user: str, password: str = PASSWORD) -> Any:
    stored = app.user_keys().get(user)
    return keyring.unwrap(stored.wrapped, password, user, stored.key_id)


# -- the genuine path ------------------------------------------------------------------------


def test_a_reset_user_changes_the_password_first_then_signs_with_a_new_key(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    before_key = store.user(ENGINEER).public_key
    closed_nc(store, ENGINEER, PASSWORD, "Signed with the first key")
    reset(store)
    account = store.user(ENGINEER)
    assert account.must_change_password and account.public_key != before_key
    # The lost password opens nothing; the temporary one logs in, but allows nothing else.
    with pytest.raises(NotPermitted):
        store.identity.login(ENGINEER, PASSWORD)
    assert store.identity.login(ENGINEER, TEMPORARY)["user"] == ENGINEER
    with store.acting_as(ENGINEER, TEMPORARY), pytest.raises(NotPermitted, match="passwd"):
        store.queries.list_records("nc")
    with store.acting_as(ENGINEER, TEMPORARY):
        store.identity.change_password(TEMPORARY, CHOSEN)
    assert not store.user(ENGINEER).must_change_password
    closed_nc(store, ENGINEER, CHOSEN, "Signed with the new key")
    summary = verified(store_target, tmp_path)
    # Both closures verify, each against the key the engineer had when signing.
    assert summary["signatures"]["digital"] == 2, summary
    assert summary["signatures"]["account_changes"] == {"signed": 2, "legacy": 0}
    rows = [json.loads(r[4]) for r in event_rows(store_target) if r[3] == RESET]
    assert len(rows) == 1 and rows[0]["authorisation"]["signer"] == ADMIN
    # The reset's key served only until the engineer chose a password: that change gave her
    # the key she signs with now.
    changed = [json.loads(r[4]) for r in event_rows(store_target)
               if r[3] == "capa.domain.user:User.PasswordChanged"]
    assert rows[0]["public_key"] != store.user(ENGINEER).public_key
    assert changed[-1]["public_key"] == store.user(ENGINEER).public_key
    assert TEMPORARY not in json.dumps(rows[0]) and "scrypt" not in json.dumps(rows[0])


def test_a_reset_unlocks_the_account_and_ends_its_sessions(store: CapaApplication) -> None:
    session = store.identity.login(OWNER, PASSWORD)
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(NotPermitted):
            store.identity.authenticate(OWNER, "a-wrong-guess-entirely")
    assert store.user(OWNER).status == "locked"
    reset(store, OWNER)
    assert store.user(OWNER).status == "active"
    with pytest.raises(NotPermitted, match="session has ended"):
        store.identity.resume_session(OWNER, session["token"])
    assert store.identity.authenticate(OWNER, TEMPORARY) == OWNER


def test_cli_reset_then_passwd(store: CapaApplication, store_target: str,
                               tmp_path: Path) -> None:
    env = cli_env(ADMIN, CAPA_NEW_PASSWORD=TEMPORARY)
    done = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "user",
                           "reset-password", ENGINEER, "--reason", "lost the password"],
                          env=env, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{ENGINEER} must choose their own at the next login" in done.stdout
    refused = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "nc", "list"],
                             env=cli_env(ENGINEER, CAPA_PASSWORD=TEMPORARY),
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert refused.returncode == 4
    assert "reset by an administrator" in refused.stderr and "Traceback" not in refused.stderr
    changed = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "user",
                              "passwd"],
                             env=cli_env(ENGINEER, CAPA_PASSWORD=TEMPORARY,
                                         CAPA_NEW_PASSWORD=CHOSEN),
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    listed = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "nc", "list"],
                            env=cli_env(ENGINEER, CAPA_PASSWORD=CHOSEN),
                            capture_output=True, text=True, check=False, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr


# -- refusals: exit code, one line, nothing written --------------------------------------------


@pytest.mark.parametrize(("by", "args", "new", "code", "words"), [
    (REPORTER, [ENGINEER, "--reason", "lost"], TEMPORARY, 4, "may not user reset-password"),
    (ADMIN, [ADMIN, "--reason", "lost"], TEMPORARY, 2, "capa user passwd"),
    (ADMIN, ["nobody", "--reason", "lost"], TEMPORARY, 3, "nobody"),
    (ADMIN, [ENGINEER, "--reason", "   "], TEMPORARY, 2, "reason"),
    (ADMIN, [ENGINEER], TEMPORARY, 2, "--reason"),
    (ADMIN, [ENGINEER, "--reason", "lost"], "short", 2, "password"),
    (ADMIN, ["not a user!", "--reason", "lost"], TEMPORARY, 2, "not a valid user id"),
])
def test_a_refused_reset_writes_nothing(store: CapaApplication, store_target: str,
                                        tmp_path: Path, by: str, args: list[str], new: str,
                                        code: int, words: str) -> None:
    before = event_count(store_target)
    hashes = query(store_target, "SELECT COUNT(*) FROM capa_credentials")
    done = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "user",
                           "reset-password", *args], env=cli_env(by, CAPA_NEW_PASSWORD=new),
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert words in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert event_count(store_target) == before
    assert query(store_target, "SELECT COUNT(*) FROM capa_credentials") == hashes


def test_a_reset_of_a_deactivated_account_writes_nothing(store: CapaApplication,
                                                         store_target: str) -> None:
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.deactivate_user(OWNER)
    before = event_count(store_target)
    with store.acting_as(ADMIN, PASSWORD), pytest.raises(Exception, match="deactivated"):
        store.identity.reset_password(OWNER, password=TEMPORARY, reason="lost")
    assert event_count(store_target) == before


def test_a_reset_with_a_wrong_admin_password_records_only_the_failure(
        store: CapaApplication, store_target: str) -> None:
    before = event_count(store_target)
    key = store.user(ENGINEER).public_key
    with store.acting_as(ADMIN, "not-the-admin-password"), pytest.raises(NotPermitted):
        store.identity.reset_password(ENGINEER, password=TEMPORARY, reason="lost")
    assert [r[3] for r in event_rows(store_target)[before:]] == [
        "capa.domain.user:User.LoginFailed"]
    assert store.user(ENGINEER).public_key == key
    assert store.identity.authenticate(ENGINEER, PASSWORD) == ENGINEER


# -- forgeries by direct inserts --------------------------------------------------------------


def insert_reset(app: CapaApplication, target: str, user: str, *, signer: str | None,
                 key: Any, password: str, actor: str | None = None) -> tuple[int, Any]:
    """INSERT a PasswordReset of `user` into the event table as a store writer would: a new
    key and a hash of the writer's choosing, signed by `key` in `signer`'s name (or unsigned).
    Returns the event's version and the new private key."""
    encoded = hash_password(password)
    credential = credential_of(encoded)
    app.credentials.put_hash(user, credential, encoded)
    new_key = keyring.new_key()
    public_key = keyring.public_key_b64(new_key)
    version = app.user(user).version + 1
    signed_at = now_iso()
    authorisation = None
    if signer is not None:
        message = password_reset_bytes(user_id=user, version=version, public_key=public_key,
                                       credential=credential, reason="lost", signed_at=signed_at,
                                       admin=signer)
        authorisation = {"signer": signer, "signed_at": signed_at,
                         "key_id": keyring.key_id(str(app.user(signer).public_key)),
                         "signature": sign(key, message)}
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": signed_at.replace("Z", "+00:00")},
             "actor": actor or signer or user, "credential": credential,
             "public_key": public_key, "reason": "lost", "authorisation": authorisation}
    insert_event(target, app.user(user).id, version, RESET,
                 json.dumps(state, separators=(",", ":")))
    return version, new_key



def assert_fails_at(target: str, cwd: Path, user: str, version: int, words: str) -> None:
    done = run_cli(target, REPORTER, ["audit", "verify"], cwd=cwd)
    assert done.returncode == 6, done.stderr
    assert f"(USER-{user} version {version})" in done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr



def test_an_unsigned_reset_fails_verify_and_lets_no_one_in(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    version, _ = insert_reset(store, store_target, ADMIN, signer=None, key=None,
                              password="the-writers-own-password", actor=REPORTER)
    assert_fails_at(store_target, tmp_path, ADMIN, version, "signed by no administrator")
    assert_login_refused(store_target, ADMIN, "the-writers-own-password",
                   "neither that user nor an administrator signed")


def test_a_reset_signed_with_the_writers_own_key_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    own = private_key_of(store, REPORTER)
    version, _ = insert_reset(store, store_target, ADMIN, signer=REPORTER, key=own,
                              password="the-writers-own-password")
    assert_fails_at(store_target, tmp_path, ADMIN, version, "who was not an administrator")
    assert_login_refused(store_target, ADMIN, "the-writers-own-password", "nor an administrator")


def test_a_reset_in_the_admins_name_signed_with_another_key_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    own = private_key_of(store, REPORTER)
    version, _ = insert_reset(store, store_target, ENGINEER, signer=ADMIN, key=own,
                              password="the-writers-own-password", actor=ADMIN)
    assert_fails_at(store_target, tmp_path, ENGINEER, version, "forged")
    assert_login_refused(store_target, ENGINEER, "the-writers-own-password", "nor an administrator")


def test_a_genuine_reset_replayed_to_another_account_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    reset(store, OWNER)
    genuine = next(json.loads(r[4]) for r in event_rows(store_target) if r[3] == RESET)
    version = store.user(ENGINEER).version + 1
    insert_event(store_target, store.user(ENGINEER).id, version, RESET, json.dumps(genuine))
    assert_fails_at(store_target, tmp_path, ENGINEER, version, "copied from another event")


def test_a_signature_made_with_a_key_from_a_forged_reset_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """A writer who gives the engineer a key of their own by a forged reset, then signs a
    closure with it, is caught at the reset, with no checkpoint."""
    own = private_key_of(store, REPORTER)
    version, _ = insert_reset(store, store_target, ENGINEER, signer=ADMIN, key=own,
                              password="the-writers-own-password", actor=ADMIN)
    assert_fails_at(store_target, tmp_path, ENGINEER, version, "forged")


# -- bundles ---------------------------------------------------------------------------------


def test_bundle_verifiers_accept_a_reset_and_report_a_forged_one(
        store: CapaApplication, monkeypatch: pytest.MonkeyPatch, store_target: str,
        tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()
    public = load_private_key(key).public_key()
    closed_nc(store, ENGINEER, PASSWORD, "Before the reset")
    reset(store)
    with store.acting_as(ENGINEER, TEMPORARY):
        store.identity.change_password(TEMPORARY, CHOSEN)
    closed_nc(store, ENGINEER, CHOSEN, "After the reset")
    export_bundle(store, tmp_path / "clean", key, log, public)
    checked = verify_bundle(tmp_path / "clean", [], None)["signatures"]
    assert checked["digital"] == 2 and checked["account_changes"]["signed"] == 2
    clean = _script(tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr

    own = private_key_of(store, REPORTER)
    version, _ = insert_reset(store, store_target, OWNER, signer=ADMIN, key=own,
                              password="the-writers-own-password", actor=ADMIN)
    # An adversary who also holds the store key signs a checkpoint over the forged event.
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "forged", key, log, public)
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "forged", [], None)
    assert (caught.value.record, caught.value.version) == (f"USER-{OWNER}", version)
    done = _script(tmp_path / "forged")
    assert done.returncode == 6
    assert f"record USER-{OWNER} version {version}" in done.stderr and "forged" in done.stderr


# -- stores of earlier releases ----------------------------------------------------------------


@pytest.mark.sqlite_only("the golden store is a SQLite file of release 1")
def test_a_reset_in_the_golden_store_is_unsigned_and_counted_legacy(
        backend: str, tmp_path: Path) -> None:
    facts = json.loads((GOLDEN / "golden-v1.json").read_text())
    copy = tmp_path / "golden.db"
    shutil.copy(GOLDEN / "golden-v1.db", copy)
    app = open_store(str(copy))
    try:
        with app.acting_as("mhernandez", facts["password"]):
            app.identity.reset_password("jchen", password=TEMPORARY, reason="lost")
        assert app.user("jchen").public_key is None
        assert app.identity.authenticate("jchen", TEMPORARY) == "jchen"
        from capa.audit.verification import verify_store

        summary = verify_store(app, None, tmp_path / "none")["signatures"]
        assert summary["account_changes"]["signed"] == 0
        assert summary["account_changes"]["legacy"] >= 1
    finally:
        app.close()


def _script(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle)], capture_output=True,
                          text=True, check=False, timeout=120)


def test_a_service_account_has_no_password_to_reset(store: CapaApplication,
                                                    store_target: str, tmp_path: Path) -> None:
    """A reset would turn a machine's account into a person's that can log in and sign: refused
    (exit 2, nothing written); one written past capa fails verify."""
    with store.acting_as(ADMIN, PASSWORD):
        store.service_accounts.add_service("mes1", full_name="MES line 1", roles=["reporter"])
    before = event_count(store_target)
    done = subprocess.run([sys.executable, "-m", "capa", "--db", store_target, "user",
                           "reset-password", "mes1", "--reason", "lost"],
                          env=cli_env(ADMIN, CAPA_NEW_PASSWORD=TEMPORARY),
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "service account" in done.stderr and "Traceback" not in done.stderr
    assert event_count(store_target) == before
    version, _ = insert_reset(store, store_target, "mes1", signer=ADMIN,
                              key=private_key_of(store, ADMIN), password=TEMPORARY,
                              actor=ADMIN)
    assert_fails_at(store_target, tmp_path, "mes1", version, "a service account")


def test_the_key_a_reset_gave_signs_nothing_once_the_user_chose_a_password(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """Whoever knew the temporary password (the administrator, or someone who saw it) and kept
    the key it opened cannot sign as the user once the user has chosen their own password: the
    change gives the user a new key, signed for with the old one."""
    from capa.audit.signatures import manifest_bytes
    from capa.domain.nonconformity import Nonconformity
    from capa.domain.record import actor_id
    from tests.support.cast import FULL_NAMES

    reset(store)
    kept = private_key_of(store, ENGINEER, TEMPORARY)
    kept_id = keyring.key_id(keyring.public_key_b64(kept))
    with store.acting_as(ENGINEER, TEMPORARY):
        store.identity.change_password(TEMPORARY, CHOSEN)
    assert keyring.key_id(str(store.user(ENGINEER).public_key)) != kept_id
    closed_nc(store, ENGINEER, CHOSEN, "Signed with the key of the engineer's own password")
    assert verified(store_target, tmp_path)["signatures"]["digital"] == 1
    with store.acting_as(REPORTER, PASSWORD):
        ref = store.nonconformities.raise_nc(title="Scratch", description="On the cover",
                                             source="process", severity="minor").id
    with store.acting_as(ENGINEER, CHOSEN):
        store.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                        rationale="cosmetic")
    nc: Any = store.repository.get(store.load(Nonconformity, ref).id)
    signed_at = now_iso()
    message = manifest_bytes(record=ref, version=nc.version, content_sha256=nc.content_digest(),
                             meaning="approval", signed_at=signed_at, user_id=ENGINEER,
                             full_name=FULL_NAMES[ENGINEER])
    token = actor_id.set(ENGINEER)
    try:
        nc.close({"user_id": ENGINEER, "full_name": FULL_NAMES[ENGINEER], "meaning": "approval",
                  "content_sha256": nc.content_digest(), "signed_version": nc.version,
                  "signed_at": signed_at, "algorithm": "Ed25519", "key_id": kept_id,
                  "signature": sign(kept, message)})
        store.save(nc)
    finally:
        actor_id.reset(token)
    done = run_cli(store_target, REPORTER, ["audit", "verify"], cwd=tmp_path)
    assert done.returncode == 6, done.stderr
    assert f"({ref} version {nc.version})" in done.stderr and "Traceback" not in done.stderr
