"""Service accounts and their API tokens (SPEC §11) on both back ends: an administrator adds
the account and issues its tokens, each change signed with the administrator's key; the store
keeps only each token's SHA-256; a service account never logs in with a password, never signs,
holds only reporter or quality; bad input writes nothing; and a token written into the store by
SQL (SPEC §9 threat model) lets no one in and fails `capa audit verify` (exit 6)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
from capa.audit.signatures import now_iso, sign, token_change_bytes
from capa.domain.errors import InvalidInput, NotFound, NotPermitted
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    cli_env,
    close_all,
    create_store,
    event_count,
    query,
    run_cli,
    stored_bytes,
)

_ISSUED = "capa.domain.user:User.ApiTokenIssued"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_bundle.py"
SERVICE = "mes-line3"


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    with app.acting_as(ADMIN, PASSWORD):
        app.service_accounts.add_service(SERVICE, full_name="MES line 3", roles=["reporter"])
    yield app
    close_all([app])


def issue(app: CapaApplication, **options: Any) -> dict[str, Any]:
    with app.acting_as(ADMIN, PASSWORD):
        return app.service_accounts.issue_token(SERVICE, **options)


def raise_with(target: str, token: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in cli_env(ADMIN).items() if k not in ("CAPA_USER", "CAPA_PASSWORD")}
    return subprocess.run(
        [sys.executable, "-m", "capa", "--db", target, "--json", "nc", "raise", "--title",
         "Short shot", "--description", "Cavity 4", "--source", "process", "--severity",
         "minor"], env={**env, "CAPA_TOKEN": token}, capture_output=True, text=True,
        timeout=120, check=False, cwd=cwd)


# -- the genuine path ------------------------------------------------------------------------


def test_a_token_raises_an_nc_as_the_service_account_and_only_its_digest_is_kept(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    issued = issue(store, label="line 3 PLC", expires="2099-12-31")
    token = issued["token"]
    assert token.startswith(f"capa_{SERVICE}_") and issued["token_id"] == "T1"
    done = raise_with(store_target, token, tmp_path)
    assert done.returncode == 0, done.stderr
    ref = json.loads(done.stdout)["id"]
    history = run_cli(store_target, ADMIN, ["history", ref], cwd=tmp_path)
    assert json.loads(history.stdout)[0]["actor"] == SERVICE
    secret = token.rsplit("_", 1)[1]
    held = stored_bytes(store_target)
    assert secret.encode() not in held and token.encode() not in held
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest.encode() in held
    # Not even the digest is shown: the account's history and view leave it out.
    trail = run_cli(store_target, ADMIN, ["history", f"USER-{SERVICE}"], cwd=tmp_path)
    assert trail.returncode == 0 and "ApiTokenIssued" in trail.stdout
    assert digest not in trail.stdout and secret not in trail.stdout
    listed = run_cli(store_target, ADMIN, ["user", "token", "list", SERVICE], cwd=tmp_path)
    assert listed.returncode == 0 and secret not in listed.stdout
    assert json.loads(listed.stdout)[0] | {"issued_at": None} == {
        "token_id": "T1", "label": "line 3 PLC", "status": "active", "issued_at": None,
        "issued_by": ADMIN, "expires_on": "2099-12-31", "revoked_at": None, "reason": None}
    exported = run_cli(store_target, ADMIN, ["export", "--format", "jsonl"], cwd=tmp_path)
    assert exported.returncode == 0 and secret not in exported.stdout
    verified = run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    # The account and its token, each signed by the administrator.
    assert json.loads(verified.stdout)["signatures"]["service_accounts"] == {"signed": 2,
                                                                            "legacy": 0}


def test_revoked_expired_and_deactivated_are_refused(store: CapaApplication,
                                                    store_target: str, tmp_path: Path) -> None:
    first, second = issue(store)["token"], issue(store)["token"]
    with store.acting_as(ADMIN, PASSWORD):
        store.service_accounts.revoke_token(SERVICE, "t1", reason="PLC replaced")
    before = event_count(store_target)
    refused = raise_with(store_target, first, tmp_path)
    assert refused.returncode == 4 and "revoked" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert raise_with(store_target, second, tmp_path).returncode == 0
    # Expired: a token valid through yesterday, written by the domain as if issued then.
    account = store.user(SERVICE)
    assert account.tokens is not None
    account.tokens["T2"]["expires_on"] = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with pytest.raises(NotPermitted, match="expired"):
        account.live_token(hashlib.sha256(second.encode()).hexdigest(),
                           dt.datetime.now(dt.UTC))
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.deactivate_user(SERVICE)
    before = event_count(store_target)
    gone = raise_with(store_target, second, tmp_path)
    assert gone.returncode == 4 and "deactivated" in gone.stderr
    assert event_count(store_target) == before


def test_a_service_account_never_logs_in_signs_or_holds_another_role(
        store: CapaApplication, store_target: str) -> None:
    before = event_count(store_target)
    with pytest.raises(NotPermitted, match="service account"):
        store.identity.login(SERVICE, PASSWORD)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.grant_role(SERVICE, "quality")
        with pytest.raises(InvalidInput, match="reporter and quality"):
            store.identity.grant_role(SERVICE, "owner")
    with store.acting_as(REPORTER, PASSWORD):
        ref = store.nonconformities.raise_nc(title="Burr", description="Edge", source="process",
                                             severity="minor").id
    with store.acting_as(ENGINEER, PASSWORD):
        store.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                        rationale="Isolated")
    before = event_count(store_target)
    with store.acting_as(SERVICE, PASSWORD), pytest.raises(NotPermitted) as caught:
        store.nonconformities.close_nc(ref)
    assert "cannot sign" in str(caught.value) and "\n" not in str(caught.value)
    assert event_count(store_target) == before


@pytest.mark.parametrize(("call", "error"), [
    (lambda app: app.service_accounts.add_service("robot", full_name="R", roles=["admin"]),
     InvalidInput),
    (lambda app: app.service_accounts.add_service("robot", full_name="R", roles=["owner"]),
     InvalidInput),
    (lambda app: app.service_accounts.add_service("NC-2026-0001", full_name="R",
                                                  roles=["reporter"]), InvalidInput),
    (lambda app: app.service_accounts.add_service(SERVICE, full_name="R", roles=["reporter"]),
     InvalidInput),
    (lambda app: app.service_accounts.add_service("robot", full_name=" ", roles=["reporter"]),
     InvalidInput),
    (lambda app: app.service_accounts.issue_token(REPORTER), InvalidInput),
    (lambda app: app.service_accounts.issue_token("nobody"), NotFound),
    (lambda app: app.service_accounts.issue_token(SERVICE, expires="2020-01-01"), InvalidInput),
    (lambda app: app.service_accounts.issue_token(SERVICE, expires="31/12/2099"), InvalidInput),
    (lambda app: app.service_accounts.issue_token(SERVICE, label=""), InvalidInput),
    (lambda app: app.service_accounts.revoke_token(SERVICE, "T9", reason="x"), NotFound),
])
def test_bad_input_is_refused_and_writes_nothing(store: CapaApplication, store_target: str,
                                                 call: Any, error: type[Exception]) -> None:
    before = event_count(store_target)
    with store.acting_as(ADMIN, PASSWORD), pytest.raises(error) as caught:
        call(store)
    assert "\n" not in str(caught.value)
    assert event_count(store_target) == before


def test_the_cli_exit_codes_of_bad_input(store: CapaApplication, store_target: str,
                                         tmp_path: Path) -> None:
    issue(store)
    cases = [
        (["user", "add-service", "robot", "--name", "R", "--role", "admin"], 2),
        (["user", "token", "issue", SERVICE, "--expires", "2020-01-01"], 2),
        (["user", "token", "issue", "nobody"], 3),
        (["user", "token", "revoke", SERVICE, "T9", "--reason", "x"], 3),
        (["user", "token", "revoke", SERVICE, "T1", "--reason", " "], 2),
        (["user", "token", "list", REPORTER], 2),
    ]
    before = event_count(store_target)
    for args, code in cases:
        done = run_cli(store_target, ADMIN, args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stderr)
        error = json.loads(done.stderr)["error"]
        assert error["code"] == code and "\n" not in error["message"]
    assert event_count(store_target) == before
    # Only an administrator issues tokens; a reporter is refused (exit 4), nothing written.
    done = run_cli(store_target, REPORTER, ["user", "token", "issue", SERVICE], cwd=tmp_path)
    assert done.returncode == 4 and event_count(store_target) == before


# -- a token written into the store past capa ---------------------------------------------------


def forge_token(app: CapaApplication, target: str, *, key: Any = None,
                signer: str = ADMIN) -> tuple[str, int]:
    """INSERT an ApiTokenIssued for the service account by SQL, as a store writer would; signed
    with `key` when given (the writer's own key in the administrator's name), else unsigned."""
    account = app.user(SERVICE)
    version = account.version + 1
    token = f"capa_{SERVICE}_{'ab' * 32}"
    digest = hashlib.sha256(token.encode()).hexdigest()
    signed_at = now_iso()
    authorisation = None
    if key is not None:
        message = token_change_bytes(user_id=SERVICE, change="issue", token_id="T1",
                                     token_sha256=digest, version=version, signed_at=signed_at,
                                     admin=signer)
        authorisation = {"admin": signer, "signed_at": signed_at,
                         "key_id": keyring.key_id(str(app.user(signer).public_key)),
                         "signature": sign(key, message)}
    state = {"timestamp": {"_type_": "datetime_iso",
                           "_data_": signed_at.replace("Z", "+00:00")},
             "actor": signer, "token_id": "T1", "token_sha256": digest, "label": "forged",
             "expires_on": None, "authorisation": authorisation}
    originator = account.id.hex if "://" not in target else str(account.id)
    query(target, "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
          "VALUES (?, ?, ?, ?)", originator, version, _ISSUED,
          json.dumps(state, separators=(",", ":")).encode())
    return token, version


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "own-key"])
def test_a_token_inserted_by_sql_is_refused_and_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path, signed: bool) -> None:
    key = None
    if signed:
        stored = store.user_keys().get(REPORTER)
        key = keyring.unwrap(stored.wrapped, PASSWORD, REPORTER, stored.key_id)
    token, version = forge_token(store, store_target, key=key)
    before = event_count(store_target)
    app = open_store(store_target)  # a fresh process of the application
    try:
        with pytest.raises(NotPermitted) as caught:
            app.service_accounts.resume_token(token)
        assert "signed administrator" in str(caught.value)
    finally:
        app.close()
    refused = raise_with(store_target, token, tmp_path)
    assert refused.returncode == 4 and "audit verify" in refused.stderr
    assert event_count(store_target) == before
    done = run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path)
    assert done.returncode == 6, done.stderr
    assert f"(USER-{SERVICE} version {version})" in done.stderr
    assert ("signed by no administrator" if not signed else "forged") in done.stderr


def test_bundle_verifiers_check_service_accounts_and_report_a_forged_token(
        store: CapaApplication, monkeypatch: pytest.MonkeyPatch, store_target: str,
        tmp_path: Path) -> None:
    issue(store)
    with store.acting_as(ADMIN, PASSWORD):
        store.service_accounts.revoke_token(SERVICE, "T1", reason="Rotated")
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    log.touch()
    public = load_private_key(key).public_key()
    export_bundle(store, tmp_path / "clean", key, log, public)
    assert verify_bundle(tmp_path / "clean", [], None)["signatures"]["service_accounts"] == {
        "signed": 3, "legacy": 0}
    clean = _script(tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert "service accounts and their API tokens: 3 signed, 0 legacy" in clean.stdout

    _, version = forge_token(store, store_target)
    # An adversary who also holds the store key signs a checkpoint over the forged event.
    monkeypatch.setattr(bundle_module, "verify_store",
                        lambda app, *_, **__: {"events": Ledger(app).catch_up().size})
    export_bundle(store, tmp_path / "forged", key, log, public)
    with pytest.raises(TamperDetected) as caught:
        verify_bundle(tmp_path / "forged", [], None)
    assert (caught.value.record, caught.value.version) == (f"USER-{SERVICE}", version)
    done = _script(tmp_path / "forged")
    assert done.returncode == 6
    assert f"record USER-{SERVICE} version {version}" in done.stderr
    assert "signed by no administrator" in done.stderr


def _script(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(bundle)], capture_output=True,
                          text=True, check=False, timeout=120)


@pytest.mark.sqlite_only("the human output is the same on both back ends")
def test_the_token_is_printed_once_on_a_line_of_its_own(store: CapaApplication,
                                                       store_target: str,
                                                       tmp_path: Path) -> None:
    def human(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "capa", "--db", store_target, *args],
                              env=cli_env(ADMIN), capture_output=True, text=True, timeout=120,
                              check=False, cwd=tmp_path)

    issued = human("user", "token", "issue", SERVICE, "--expires", "2099-01-31")
    assert issued.returncode == 0, issued.stderr
    first, token = issued.stdout.splitlines()
    assert first == f"{SERVICE}: token T1 issued until 2099-01-31; shown only this once:"
    assert token.startswith(f"capa_{SERVICE}_") and len(token) == len(f"capa_{SERVICE}_") + 64
    listed = human("user", "token", "list", SERVICE)
    assert "T1" in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    users = human("user", "list")
    assert any(SERVICE in line and line.rstrip().endswith("service")
               for line in users.stdout.splitlines())
