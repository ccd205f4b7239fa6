"""SPEC §9.3 and §9.5 on both back ends: password hashes never leave the store (no event,
export or bundle holds one, stores of earlier releases included), and every password check is
counted by the store, even when sixteen processes guess at once.

The adversary's tests write the store's tables directly, as someone holding the database
credentials or the file would."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.passwords import hash_password
from capa.app.store import open_store
from capa.app.storecopy import copy_store
from capa.audit.keys import generate_private_key
from capa.domain.user import MAX_FAILED_ATTEMPTS
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    cli_env,
    close_all,
    create_store,
    discard_target,
    event_rows,
    new_target,
    query,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_bundle.py"
GOLDEN = ROOT / "tests" / "golden" / "golden-v1.db"
GOLDEN_PASSWORD = json.loads((ROOT / "tests" / "golden" / "golden-v1.json").read_text())[
    "password"]
WRONG = "not-the-password-000"
#: The account events of the golden store that hold a password hash (one per account).
GOLDEN_HASH_EVENTS = 6


@pytest.fixture
def store(store_target: str) -> str:
    close_all([create_store(store_target)])
    return store_target


@pytest.fixture
def golden(backend: str, tmp_path: Path) -> Iterator[str]:
    """The golden store of an earlier release on the test's back end: a copy of the file, or
    its events copied byte for byte into a PostgreSQL database."""
    copy = tmp_path / "golden.db"
    shutil.copyfile(GOLDEN, copy)
    if backend == "sqlite":
        yield str(copy)
        return
    target = new_target(backend, tmp_path / "pg")
    source = open_store(str(copy))
    try:
        with source.acting_as(ADMIN, GOLDEN_PASSWORD):
            copy_store(source, target)
    finally:
        source.close()
    yield target
    discard_target(target)


def capa(target: str, user: str, *args: str, password: str = PASSWORD,
         cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capa", "--db", target, *args],
                          env=cli_env(user, CAPA_PASSWORD=password, **extra),
                          capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def topics_of(target: str, user: str) -> list[str]:
    from capa.domain.record import record_uuid

    rid = record_uuid("USER-" + user)
    return [topic.rpartition(".")[2] for _, r, _, topic, _ in event_rows(target) if r == rid]


# -- §9.3 secrets never leave the store ------------------------------------------------------


def test_a_new_store_keeps_every_hash_outside_its_events(store: str, tmp_path: Path) -> None:
    changed = capa(store, REPORTER, "user", "passwd", CAPA_NEW_PASSWORD="a-new-password-1")
    assert changed.returncode == 0, changed.stderr
    rows = event_rows(store)
    assert rows and not any(b"scrypt$" in state or b"password_hash" in state
                            for *_, state in rows)
    # The hashes are in the store, outside the log, one per account that uses it.
    kept = query(store, "SELECT user_id, digest, password_hash FROM capa_credentials")
    assert sorted(r[0] for r in kept) == sorted([ADMIN, ENGINEER, "apatel", REPORTER])
    assert all(str(h).startswith("scrypt$") for *_, h in kept)
    # Each account event names its hash by digest only.
    for _, digest, encoded in kept:
        assert digest == "sha256:" + hashlib.sha256(str(encoded).encode()).hexdigest()
        assert any(digest.encode() in state for *_, state in rows)
    assert capa(store, REPORTER, "whoami", password="a-new-password-1").returncode == 0
    assert capa(store, REPORTER, "whoami").returncode == 4
    exported = capa(store, ADMIN, "export", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    assert "scrypt$" not in exported.stdout
    assert exported.stdout.count("\n") == len(event_rows(store))


@pytest.mark.parametrize(("args", "new_password"), [
    (["user", "add", "bob", "--full-name", "Bob B", "--role", "wizard"], "bob-password-1"),
    (["user", "add", "bob", "--full-name", "Bob B", "--role", "owner"], "short"),
    (["user", "passwd"], "short"),
])
def test_a_refused_password_change_or_account_keeps_no_hash(store: str, args: list[str],
                                                           new_password: str) -> None:
    before = (event_rows(store), query(store, "SELECT * FROM capa_credentials ORDER BY 1, 2"))
    refused = capa(store, ADMIN, *args, CAPA_NEW_PASSWORD=new_password)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert (event_rows(store), query(store, "SELECT * FROM capa_credentials ORDER BY 1, 2")) \
        == before


def test_a_copy_of_the_store_keeps_the_hashes_its_events_name(store: str,
                                                              tmp_path: Path) -> None:
    copy = str(tmp_path / "copy.db")
    source = open_store(store)
    try:
        with source.acting_as(ADMIN, PASSWORD):
            copy_store(source, copy)
    finally:
        source.close()
    assert capa(copy, REPORTER, "whoami").returncode == 0
    assert capa(copy, REPORTER, "whoami", password=WRONG).returncode == 4


def test_the_golden_store_exports_no_hash(golden: str) -> None:
    for user in (ADMIN, "sbauer"):  # an administrator and an auditor
        exported = capa(golden, user, "export", "--format", "jsonl", password=GOLDEN_PASSWORD)
        assert exported.returncode == 0, exported.stderr
        assert "scrypt" not in exported.stdout and "password_hash" not in exported.stdout
        assert exported.stdout.count("\n") == 48


def test_a_password_change_on_the_golden_store_moves_the_hash_out(golden: str) -> None:
    before = len(event_rows(golden))
    changed = capa(golden, ENGINEER, "user", "passwd", password=GOLDEN_PASSWORD,
                   CAPA_NEW_PASSWORD="jun-new-password-2")
    assert changed.returncode == 0, changed.stderr
    rows = event_rows(golden)
    assert len(rows) == before + 1 and b"scrypt$" not in rows[-1][4]
    assert query(golden, "SELECT user_id FROM capa_credentials") == [(ENGINEER,)]
    assert capa(golden, ENGINEER, "whoami", password="jun-new-password-2").returncode == 0
    old = capa(golden, ENGINEER, "whoami", password=GOLDEN_PASSWORD)
    assert old.returncode == 4
    # The other accounts still log in with the hash their old events hold.
    assert capa(golden, ADMIN, "whoami", password=GOLDEN_PASSWORD).returncode == 0


def test_a_hash_written_into_the_table_outside_capa_is_never_used(store: str) -> None:
    # Someone with the database credentials sets a hash of a password they know.
    query(store, "UPDATE capa_credentials SET password_hash = ? WHERE user_id = ?",
          hash_password("chosen-by-the-adversary"), REPORTER)
    before = event_rows(store)
    refused = capa(store, REPORTER, "nc", "raise", "--title", "T", "--description", "D",
                   "--source", "process", "--severity", "minor",
                   password="chosen-by-the-adversary")
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    # Nothing but the failed check is recorded.
    added = event_rows(store)[len(before):]
    assert [topic.rpartition(".")[2] for *_, topic, _ in added] == ["LoginFailed"]
    # A row deleted, likewise, lets no one in.
    query(store, "DELETE FROM capa_credentials WHERE user_id = ?", ADMIN)
    assert capa(store, ADMIN, "whoami").returncode == 4


def _export(target: str, folder: Path, out: str) -> Path:
    key = folder / "golden.key"
    if not key.exists():
        generate_private_key(key)  # the golden store names no key: any key may sign its export
        # A key beside a store makes verification strict: it is held to a checkpoint log.
        (folder / "golden.checkpoints").touch()
    done = capa(target, ADMIN, "audit", "export", "--out", str(folder / out), "--key", str(key),
                "--log", str(folder / "golden.checkpoints"), password=GOLDEN_PASSWORD, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / out


def _verify(bundle: Path) -> tuple[subprocess.CompletedProcess[str],
                                   subprocess.CompletedProcess[str]]:
    env = cli_env(ADMIN)
    by_capa = subprocess.run([sys.executable, "-m", "capa", "audit", "verify-bundle",
                              str(bundle)], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    by_script = subprocess.run([sys.executable, str(SCRIPT), str(bundle)], env=env,
                               capture_output=True, text=True, timeout=120, check=False)
    return by_capa, by_script


@pytest.mark.parametrize("out", ["bundle", "bundle.zip"])
def test_a_bundle_of_the_golden_store_discloses_no_hash_and_verifies(
        golden: str, tmp_path: Path, out: str) -> None:
    bundle = _export(golden, tmp_path, out)
    files = [bundle] if bundle.is_file() else sorted(bundle.iterdir())
    import zipfile

    contents = b"".join(f.read_bytes() for f in files) if bundle.is_dir() else b"".join(
        zipfile.ZipFile(bundle).read(n) for n in zipfile.ZipFile(bundle).namelist())
    assert b"scrypt" not in contents and b"password_hash" not in contents
    for outcome in _verify(bundle):
        assert outcome.returncode == 0, outcome.stderr
        assert f"{GOLDEN_HASH_EVENTS} line(s) withheld" in outcome.stdout
        assert "could not be read" in outcome.stdout


def _lines(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]


def _rewrite(bundle: Path, lines: list[dict[str, Any]]) -> None:
    """Write events.jsonl back with the manifest made to agree, as a forger would."""
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    (bundle / "events.jsonl").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["sha256"]["events.jsonl"] = hashlib.sha256(data).hexdigest()
    manifest["withheld_count"] = sum("withheld" in line for line in lines)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _withhold(line: dict[str, Any], **claims: Any) -> dict[str, Any]:
    kept = {k: line[k] for k in ("position", "record_id", "version", "event_type", "leaf_hash")}
    return {**kept, "record": line["record"], "type": line["type"], "withheld": "hidden",
            **claims}


def _record_event(lines: list[dict[str, Any]]) -> int:
    return next(i for i, line in enumerate(lines) if str(line.get("record", "")).startswith("NC-")
                and "state_b64" in line)


@pytest.mark.parametrize("forgery", ["as itself", "as an account event", "with content",
                                     "an account event without a hash"])
def test_a_bundle_cannot_withhold_a_record_event(golden: str, tmp_path: Path,
                                                 forgery: str) -> None:
    bundle = _export(golden, tmp_path, "bundle")
    lines = _lines(bundle)
    assert _verify(bundle)[0].returncode == 0
    index = _record_event(lines)
    line = lines[index]
    if forgery == "as itself":
        lines[index] = _withhold(line)
    elif forgery == "as an account event":
        # Claimed to be a new account's first event: the record id is not that account's.
        lines[index] = _withhold(line, event_type="capa.domain.user:User.UserAdded",
                                 version=1, record="USER-ghost", type="User.UserAdded")
    elif forgery == "with content":
        index = next(i for i, x in enumerate(lines) if "withheld" in x)
        lines[index] = {**lines[index], "data": {"full_name": "Someone Else"}}
    else:
        index = next(i for i, x in enumerate(lines) if x.get("type") == "User.RoleGranted")
        lines[index] = _withhold(lines[index])
    _rewrite(bundle, lines)
    for outcome in _verify(bundle):
        assert outcome.returncode == 6, outcome.stdout + outcome.stderr
        assert "Traceback" not in outcome.stderr


def test_a_withheld_line_with_another_leaf_fails(golden: str, tmp_path: Path) -> None:
    bundle = _export(golden, tmp_path, "bundle")
    lines = _lines(bundle)
    index = next(i for i, x in enumerate(lines) if "withheld" in x)
    lines[index]["leaf_hash"] = hashlib.sha256(b"forged").hexdigest()
    _rewrite(bundle, lines)
    for outcome in _verify(bundle):
        assert outcome.returncode == 6, outcome.stdout + outcome.stderr


def test_a_new_store_bundle_withholds_nothing(store: str, tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    generate_private_key(key)
    done = capa(store, ADMIN, "audit", "export", "--out", str(tmp_path / "b"), "--key", str(key),
                "--log", str(tmp_path / "log"), cwd=tmp_path)
    if done.returncode != 0:
        pytest.skip(f"this store is bound to its own key: {done.stderr.strip()}")
    lines = _lines(tmp_path / "b")
    assert not any("withheld" in x for x in lines)
    assert b"scrypt$" not in b"".join(base64.b64decode(x["state_b64"]) for x in lines)


# -- §9.5 every attempt counts ---------------------------------------------------------------


def _guess_in_parallel(target: str, user: str, count: int, password: str = WRONG
                       ) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([sys.executable, "-m", "capa", "--db", target, "whoami"],
                              env=cli_env(user, CAPA_PASSWORD=password), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for _ in range(count)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_sixteen_parallel_wrong_passwords_lock_the_account_after_five_checks(
        store: str) -> None:
    outcomes = _guess_in_parallel(store, REPORTER, 16)
    assert all(o.returncode == 4 for o in outcomes), [o.stderr for o in outcomes]
    assert not any("Traceback" in o.stderr for o in outcomes)
    topics = topics_of(store, REPORTER)
    # Every check was recorded, and no more than five were ever made.
    assert topics.count("LoginFailed") == MAX_FAILED_ATTEMPTS
    assert topics.count("AccountLocked") == 1
    assert query(store, "SELECT failures, checking FROM capa_login_attempts WHERE user_id = ?",
                 REPORTER) == [(MAX_FAILED_ATTEMPTS, 0)]
    refused = capa(store, REPORTER, "whoami")  # the right password, too late
    assert refused.returncode == 4 and "locked" in refused.stderr
    assert topics_of(store, REPORTER) == topics
    # An administrator's unlock ends the run: the right password works again.
    assert capa(store, ADMIN, "user", "unlock", REPORTER).returncode == 0
    assert capa(store, REPORTER, "whoami").returncode == 0


def test_parallel_commands_with_the_right_password_are_never_counted_as_guesses(
        store: str) -> None:
    # More parallel checks than the limit: those beyond it wait for a place, none is refused.
    outcomes = _guess_in_parallel(store, ENGINEER, 8, password=PASSWORD)
    assert all(o.returncode == 0 for o in outcomes), [o.stderr for o in outcomes]
    topics = topics_of(store, ENGINEER)
    assert "LoginFailed" not in topics and "AccountLocked" not in topics
    assert query(store, "SELECT failures, checking FROM capa_login_attempts WHERE user_id = ?",
                 ENGINEER) == [(0, 0)]


def test_a_correct_password_ends_a_run_of_failures(store: str) -> None:
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        assert capa(store, ENGINEER, "whoami", password=WRONG).returncode == 4
    assert capa(store, ENGINEER, "whoami").returncode == 0
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        assert capa(store, ENGINEER, "whoami", password=WRONG).returncode == 4
    assert capa(store, ENGINEER, "whoami").returncode == 0
    topics = topics_of(store, ENGINEER)
    assert "AccountLocked" not in topics and topics.count("FailedAttemptsCleared") == 2


def test_a_successful_command_writes_no_event(store: str) -> None:
    before = len(event_rows(store))
    assert capa(store, ENGINEER, "whoami").returncode == 0
    assert capa(store, ENGINEER, "nc", "list").returncode == 0
    assert len(event_rows(store)) == before


def test_a_full_run_in_the_store_refuses_without_checking(store: str) -> None:
    # The counter reads full (a check that filled it died before recording the lock): no
    # password is checked, and the lock is recorded.
    query(store, "INSERT INTO capa_login_attempts (user_id, failures) VALUES (?, ?)",
          REPORTER, MAX_FAILED_ATTEMPTS)
    refused = capa(store, REPORTER, "whoami")
    assert refused.returncode == 4 and "locked" in refused.stderr
    topics = topics_of(store, REPORTER)
    assert "LoginFailed" not in topics and topics[-1] == "AccountLocked"


def test_a_store_of_an_earlier_release_gains_the_tables(golden: str) -> None:
    if not golden.startswith("postgres"):
        tables = query(golden, "SELECT name FROM sqlite_master WHERE type = 'table'")
        assert ("capa_login_attempts",) not in tables
    assert capa(golden, REPORTER, "whoami", password=WRONG).returncode == 4
    assert query(golden, "SELECT failures FROM capa_login_attempts WHERE user_id = ?",
                 REPORTER) == [(1,)]


def test_a_store_whose_counter_tables_are_gone_makes_them_again(store: str) -> None:
    # As a store of an earlier release has none: the first command that needs them makes them.
    query(store, "DROP TABLE capa_login_attempts")
    query(store, "DROP TABLE capa_sessions")
    assert capa(store, REPORTER, "whoami", password=WRONG).returncode == 4
    assert query(store, "SELECT failures FROM capa_login_attempts WHERE user_id = ?",
                 REPORTER) == [(1,)]
    assert capa(store, REPORTER, "whoami").returncode == 0
