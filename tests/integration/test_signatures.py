"""Per-user Ed25519 signatures (SPEC §9.2) against someone who can write the store: forged
signatures and forged keys, written with the library or with SQL, are reported by
`capa audit verify` (exit 6, naming the event) with no checkpoint at all, and by both bundle
verifiers; stores of earlier releases stay verifiable and report password-attested signatures."""

from __future__ import annotations

import base64
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
from capa.audit.signatures import manifest_bytes, sign
from capa.audit.verification import verify_store
from capa.domain.errors import NotPermitted
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import actor_id
from capa.domain.user import User
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    close_all,
    create_store,
    event_count,
    event_rows,
    query,
    run_cli,
)
from tests.support.cast import FULL_NAMES
from tests.support.reading import reading

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SCRIPT = ROOT / "scripts" / "verify_bundle.py"


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def assessed_nc(app: CapaApplication, title: str = "Burr on flange") -> str:
    with app.acting_as(REPORTER, PASSWORD):
        ref = app.nonconformities.raise_nc(title=title, description="Seen at goods-in",
                                           source="supplier",
                                           severity="minor").id
    with app.acting_as(ENGINEER, PASSWORD):
        app.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                      rationale="cosmetic")
    return ref


def closed_nc(app: CapaApplication, title: str = "Burr on flange") -> str:
    ref = assessed_nc(app, title)
    with app.acting_as(ENGINEER, PASSWORD):
        app.nonconformities.close_nc(ref)
    return ref


def forge_close(app: CapaApplication, ref: str, signature: dict[str, Any],
                actor: str = ADMIN) -> int:
    """Write a Closed event with the given signature dict as someone with the library and store
    access but no password: no check of capa's runs. Returns the event's version."""
    token = actor_id.set(actor)
    try:
        nc: Any = app.repository.get(app.load(Nonconformity, ref).id)
        nc.close(signature)
        app.save(nc)
    finally:
        actor_id.reset(token)
    return int(nc.version)


def manifest_of(app: CapaApplication, ref: str, user: str, signed_at: str,
                content: str | None = None) -> tuple[dict[str, Any], bytes]:
    nc = app.load(Nonconformity, ref)
    sig: dict[str, Any] = {"user_id": user, "full_name": FULL_NAMES[user], "meaning": "approval",
           "content_sha256": content or nc.content_digest(), "signed_version": nc.version,
           "signed_at": signed_at, "algorithm": "Ed25519",
           "key_id": keyring.key_id(str(app.user(user).public_key))}
    message = manifest_bytes(record=ref, version=nc.version, content_sha256=sig["content_sha256"],
                             meaning="approval", signed_at=signed_at, user_id=user,
                             full_name=FULL_NAMES[user])
    return sig, message


def verify_cli(target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(target, ADMIN, ["audit", "verify"], cwd=cwd)


def assert_fails_at(done: subprocess.CompletedProcess[str], ref: str, version: int,
                    words: str) -> None:
    assert done.returncode == 6, done.stderr
    assert f"({ref} version {version})" in done.stderr and "position " in done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


# -- a normal flow ---------------------------------------------------------------------------


def test_signed_flow_verifies_with_digital_signatures(store: CapaApplication,
                                                      store_target: str,
                                                      tmp_path: Path) -> None:
    ref = closed_nc(store)
    with reading(store):
        entry = [e for e in store.records.history(ref) if e.signature][0]
    assert entry.signature is not None
    assert entry.signature.kind == "digital" and entry.signature.algorithm == "Ed25519"
    # The signature's time is its event's time: the record as of then is the signed result.
    assert entry.signature.signed_at == entry.time
    summary = verify_store(store, None, tmp_path / "none.checkpoints")
    assert summary["signatures"]["digital"] == 1
    assert summary["signatures"]["content_checked"] == 1
    assert summary["signatures"]["user_keys"] == 4
    done = verify_cli(store_target, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signatures"]["password-attested"] == 0


def test_password_change_keeps_the_key_usable(store: CapaApplication,
                                              tmp_path: Path) -> None:
    with store.acting_as(ENGINEER, PASSWORD):
        store.identity.change_password(PASSWORD, "a-new-password-9")
    with store.acting_as(REPORTER, PASSWORD):
        ref = store.nonconformities.raise_nc(title="After the change", description="x",
                                             source="supplier",
                                             severity="minor").id
    with store.acting_as(ENGINEER, "a-new-password-9"):
        store.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                        rationale="cosmetic")
        store.nonconformities.close_nc(ref)
    assert verify_store(store, None, tmp_path / "x")["signatures"]["digital"] == 1


# -- refusals: nothing written ---------------------------------------------------------------


def test_wrong_password_at_signing_exit_4_nothing_signed(store: CapaApplication,
                                                         store_target: str,
                                                         tmp_path: Path) -> None:
    ref = assessed_nc(store)
    before = store.load(Nonconformity, ref).version
    done = subprocess.run(
        [sys.executable, "-m", "capa", "--db", store_target, "nc", "close", ref],
        env={**_env(ENGINEER), "CAPA_PASSWORD": "not-the-password"}, capture_output=True,
        text=True, check=False, cwd=tmp_path, timeout=120)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert store.load(Nonconformity, ref).version == before


def test_a_replaced_key_row_cannot_sign(store: CapaApplication, store_target: str) -> None:
    """Someone who swaps the rows of the key table gets no one's signature: the wrapped key is
    bound to its user, and the event log, not the table, names each user's public key."""
    ref = assessed_nc(store)
    query(store_target, "UPDATE capa_user_keys SET wrapped = (SELECT wrapped FROM "
          "capa_user_keys WHERE user_id = ?) WHERE user_id = ?", ADMIN, ENGINEER)
    count = event_count(store_target)
    with store.acting_as(ENGINEER, PASSWORD), pytest.raises(NotPermitted):
        store.nonconformities.close_nc(ref)
    assert event_count(store_target) == count
    assert store.load(Nonconformity, ref).status == "assessed"


def test_adding_a_user_without_the_password_again_is_refused(store: CapaApplication,
                                                             store_target: str) -> None:
    count = event_count(store_target)
    with store.acting_as(ADMIN), pytest.raises(NotPermitted):
        store.identity.add_user("newbie", full_name="New Bie", roles=["reporter"],
                                password=PASSWORD)
    assert event_count(store_target) == count


# -- the adversary ---------------------------------------------------------------------------


def test_password_attested_signature_in_a_digital_store(store: CapaApplication,
                                                        store_target: str,
                                                        tmp_path: Path) -> None:
    ref = assessed_nc(store)
    nc = store.load(Nonconformity, ref)
    version = forge_close(store, ref, {
        "user_id": ADMIN, "full_name": "Maria Hernandez", "meaning": "approval",
        "content_sha256": nc.content_digest(), "signed_version": nc.version})
    assert_fails_at(verify_cli(store_target, tmp_path), ref, version, "no digital signature")


def test_made_up_signature_in_another_users_name(store: CapaApplication, store_target: str,
                                                 tmp_path: Path) -> None:
    ref = assessed_nc(store)
    from capa.audit.signatures import now_iso

    sig, _ = manifest_of(store, ref, ADMIN, now_iso())
    sig["signature"] = base64.b64encode(bytes(range(64))).decode()
    version = forge_close(store, ref, sig)
    assert_fails_at(verify_cli(store_target, tmp_path), ref, version, "forged")


def test_signature_copied_from_another_event(store: CapaApplication, store_target: str,
                                             tmp_path: Path) -> None:
    first = closed_nc(store, "First")
    with reading(store):
        copied = next(e.signature for e in store.records.history(first) if e.signature)
    assert copied is not None
    second = assessed_nc(store, "Second")
    version = forge_close(store, second, copied.model_dump(exclude={"kind"}), actor=ENGINEER)
    assert_fails_at(verify_cli(store_target, tmp_path), second, version, "copied")


def test_changed_content_hash_by_sql(store: CapaApplication, store_target: str,
                                     tmp_path: Path) -> None:
    ref = closed_nc(store)
    nc = store.load(Nonconformity, ref)
    with reading(store):
        digest = next(e.signature for e in store.records.history(ref) if e.signature).content_sha256
    position, _, _, _, state = next(row for row in event_rows(store_target)
                                    if row[1] == nc.id and row[2] == nc.version)
    assert digest.encode() in state
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          state.replace(digest.encode(), b"0" * 64), position)
    assert_fails_at(verify_cli(store_target, tmp_path), ref, nc.version, "forged")


def close_signed_over_false_content(store: CapaApplication, ref: str, content: str) -> int:
    """The version of a closure the engineer really signed, with their own key, over a content
    hash that is not the record's: a valid signature on a false binding."""
    from capa.audit.signatures import now_iso

    sig, message = manifest_of(store, ref, ENGINEER, now_iso(), content=content)
    stored = store.user_keys().get(ENGINEER)
    private = keyring.unwrap(stored.wrapped, PASSWORD, ENGINEER, stored.key_id)
    return forge_close(store, ref, {**sig, "signature": sign(private, message)}, actor=ENGINEER)


def test_a_signer_who_signs_a_false_content_hash(store: CapaApplication,
                                                 store_target: str, tmp_path: Path) -> None:
    """Even a valid signature by the right key must bind the content folded from the events."""
    ref = assessed_nc(store)

    version = close_signed_over_false_content(store, ref, "ab" * 32)
    assert_fails_at(verify_cli(store_target, tmp_path), ref, version, "folded")


def test_forged_user_with_the_attackers_key(store: CapaApplication, store_target: str,
                                            tmp_path: Path) -> None:
    attacker = keyring.new_key()
    public = keyring.public_key_b64(attacker)
    token = actor_id.set(ADMIN)
    try:
        mallory = User.add(user_id="mallory", full_name="Mal Lory", roles=["admin", "quality"],
                           credential="sha256:" + "0" * 64, public_key=public,
                           endorsement={"admin": ADMIN, "endorsed_at": "2026-01-01T00:00:00Z",
                                        "signature": sign(attacker, b"anything")})
        store.save(mallory)
    finally:
        actor_id.reset(token)
    done = verify_cli(store_target, tmp_path)
    assert_fails_at(done, "USER-mallory", 1, "endorsement")


def test_forged_user_without_endorsement(store: CapaApplication, store_target: str,
                                         tmp_path: Path) -> None:
    token = actor_id.set(ADMIN)
    try:
        store.save(User.add(user_id="mallory", full_name="Mal Lory", roles=["admin"],
                            credential="sha256:" + "0" * 64,
                            public_key=keyring.public_key_b64(keyring.new_key())))
    finally:
        actor_id.reset(token)
    assert_fails_at(verify_cli(store_target, tmp_path), "USER-mallory", 1,
                    "endorsed by no administrator")


# -- bundles ---------------------------------------------------------------------------------


def test_bundle_verifiers_report_a_forged_signature(store: CapaApplication,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    """An adversary who holds the store key too can sign a checkpoint over a forged event; the
    signers' keys still give it away, in verify-bundle and in the standalone script."""
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()  # as capa init starts it: a key beside the store is held to its log
    public = load_private_key(key).public_key()
    closed_nc(store, "Clean")
    export_bundle(store, tmp_path / "clean", key, log, public)
    summary = verify_bundle(tmp_path / "clean", [], None)["signatures"]
    assert summary["digital"] == summary["content_checked"] == 1
    clean = _script(tmp_path / "clean")
    assert clean.returncode == 0 and "1 digital" in clean.stdout
    assert "content hashes not recomputed" in clean.stdout

    ref = assessed_nc(store, "Forged")
    from capa.audit.signatures import now_iso

    sig, _ = manifest_of(store, ref, ADMIN, now_iso())
    version = forge_close(store, ref, {**sig, "signature": base64.b64encode(
        bytes(64)).decode()})
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "forged", key, log, public)
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "forged", [], None)
    assert (caught.value.record, caught.value.version) == (ref, version)
    done = _script(tmp_path / "forged")
    assert done.returncode == 6
    assert f"record {ref} version {version}" in done.stderr and "forged" in done.stderr


def test_bundle_verifiers_report_a_forged_key(store: CapaApplication,
                                              monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    token = actor_id.set(ADMIN)
    try:
        store.save(User.add(user_id="mallory", full_name="Mal Lory", roles=["admin"],
                            credential="sha256:" + "0" * 64,
                            public_key=keyring.public_key_b64(keyring.new_key())))
    finally:
        actor_id.reset(token)
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "b", key, log, load_private_key(key).public_key())
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "b", [], None)
    assert caught.value.record == "USER-mallory"
    done = _script(tmp_path / "b")
    assert done.returncode == 6 and "USER-mallory" in done.stderr


# -- stores of earlier releases ----------------------------------------------------------------


@pytest.mark.sqlite_only("the golden store is a SQLite file of release 1")
def test_golden_store_reports_password_attested(backend: str, tmp_path: Path) -> None:
    facts = json.loads((GOLDEN / "golden-v1.json").read_text())
    copy = tmp_path / "golden.db"
    shutil.copy(GOLDEN / "golden-v1.db", copy)
    app = open_store(str(copy))
    try:
        summary = verify_store(app, None, tmp_path / "none")["signatures"]
        assert summary["digital"] == 0 and summary["password-attested"] == 6
        with reading(app):
            signed = [e for e in app.records.history("CA-2026-0001") if e.signature]
        assert signed and all(e.signature and e.signature.kind == "password-attested"
                              for e in signed)
        # Users of an earlier store have no key: they keep signing password-attested, and a
        # user added now gets no key either (no administrator holds one to endorse it).
        password = facts["password"]
        with app.acting_as(ADMIN, password):
            app.identity.add_user("newbie", full_name="New Bie", roles=["quality"],
                                  password=password)
        assert app.user("newbie").public_key is None
        with app.acting_as("tokafor", password):
            ref = app.nonconformities.raise_nc(title="After the upgrade", description="x",
                                               source="supplier",
                                               severity="minor").id
        with app.acting_as("newbie", password):
            app.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                          rationale="cosmetic")
            app.nonconformities.close_nc(ref)
        after = verify_store(app, None, tmp_path / "none")["signatures"]
        assert after["password-attested"] == 7
    finally:
        app.close()
    done = subprocess.run(
        [sys.executable, "-m", "capa", "--db", str(copy), "history", "CA-2026-0001"],
        env={**_env(ADMIN), "CAPA_PASSWORD": password}, capture_output=True, text=True,
        check=False, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "password-attested (no digital signature)" in done.stdout


# -- helpers ---------------------------------------------------------------------------------


def _env(user: str) -> dict[str, str]:
    from tests.support.backends import cli_env

    return cli_env(user)


def _script(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle)], capture_output=True,
                          text=True, check=False, timeout=120)


def test_a_copied_store_keeps_its_signing_keys(store: CapaApplication, tmp_path: Path) -> None:
    from capa.app.storecopy import copy_store

    ref = assessed_nc(store)
    copy = str(tmp_path / "copy.db")
    with store.acting_as(ADMIN, PASSWORD):
        copy_store(store, copy)
    copied = open_store(copy)
    try:
        with copied.acting_as(ENGINEER, PASSWORD):
            copied.nonconformities.close_nc(ref)
        assert verify_store(copied, None, tmp_path / "none")["signatures"]["digital"] == 1
    finally:
        copied.close()


def test_verify_bundle_folds_the_signed_content(store: CapaApplication,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """A valid signature by the right key over a false content hash: capa's verify-bundle folds
    the record from the bundle and reports it; the standalone script, which does not fold
    records, passes the manifest signature and says it did not check content."""
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    ref = assessed_nc(store)

    version = close_signed_over_false_content(store, ref, "cd" * 32)
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "b", key, log, load_private_key(key).public_key())
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "b", [], None)
    assert (caught.value.record, caught.value.version) == (ref, version)
    assert "folded" in str(caught.value)
    done = _script(tmp_path / "b")
    assert done.returncode == 0 and "content hashes not recomputed" in done.stdout


def test_adding_a_user_with_a_wrong_password_again_is_refused(store: CapaApplication,
                                                              store_target: str) -> None:
    count = event_count(store_target)
    with store.acting_as(ADMIN, "not-the-password"), pytest.raises(NotPermitted):
        store.identity.add_user("newbie", full_name="New Bie", roles=["reporter"],
                                password=PASSWORD)
    assert store.find_user("newbie") is None
    assert store.user_keys().get("newbie") is None
    # Only the failed attempt is recorded, as for any wrong password.
    assert event_count(store_target) == count + 1


def test_the_8d_manifestation_says_how_it_was_signed(store: CapaApplication) -> None:
    from capa.reports.eightd import manifestation

    ref = closed_nc(store)
    with reading(store):
        shown: Any = store.records.show(ref).model_dump(mode="json")
    signature = shown["closure"]["signature"]
    text = manifestation(signature)
    assert f"digital signature (Ed25519, key {signature['key_id']})" in text
    old = {k: v for k, v in signature.items() if k not in ("algorithm", "key_id", "signature")}
    assert manifestation(old).endswith("password-attested (no digital signature)")
