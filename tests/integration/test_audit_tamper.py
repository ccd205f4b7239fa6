"""Every tamper kind of SPEC §5, made by editing the SQLite file directly, is detected by
`capa audit verify` with exit 6 and the first bad position, record and version; a clean store
verifies after reopening and after concurrent writes, and exported bundles verify offline.

SQLite only, on purpose: these tests edit the SQLite file (rowids, pages) as someone with access
to the file would. The same kinds of edit made to the PostgreSQL event table are in
test_audit_backends.py and in tests/bdd/test_audit_integrity.py, which run on both back ends."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.app.store import open_store
from capa.domain.record import record_uuid
from tests.support.cast import FULL_NAMES, PASSWORD
from tests.support.cast import QUALITY_ENGINEER as QUALITY
from tests.support.cast import QUALITY_MANAGER as ADMIN
from tests.support.cli import ROOT, Outcome, run_capa, run_capa_process

SCRIPT = ROOT / "scripts" / "verify_bundle.py"


class AuditedStore:
    """A store made by `capa init`, a few records, and the files beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "capa.db"
        self.key = folder / "capa.db.key"
        self.log = folder / "capa.db.checkpoints"

    def env(self) -> dict[str, str | None]:
        return {"CAPA_DB": str(self.db), "CAPA_USER": ADMIN, "CAPA_PASSWORD": PASSWORD,
                "CAPA_SESSION_DIR": str(self.folder / "sessions"), "CAPA_KEY": None,
                "CAPA_CHECKPOINTS": None, "CAPA_DEBUG": None}

    def run(self, *args: str) -> Outcome:
        outcome = run_capa(args, env=self.env())
        assert "Traceback" not in outcome.stdout + outcome.stderr
        return outcome

    def process(self, *args: str) -> Outcome:
        return run_capa_process(args, env=self.env(), cwd=self.folder)

    def build(self) -> None:
        done = self.run("init", "--admin", ADMIN, "--full-name", FULL_NAMES[ADMIN],
                        "--org", "Northwind Medical Devices")
        assert done.code == 0, done.stderr
        app = open_store(str(self.db))
        try:
            with app.acting_as(ADMIN, PASSWORD):
                app.identity.add_user(QUALITY, full_name=FULL_NAMES[QUALITY], roles=["quality",
                                                                                     "reporter"],
                                      password=PASSWORD)
            with app.acting_as(QUALITY, PASSWORD):
                for n in range(1, 4):
                    app.nonconformities.raise_nc(title=f"Cracked housing {n}",
                                                 description="Hairline crack",
                                                 source="process", severity="major")
                app.nonconformities.amend_nc(self.ref(1), field="title",
                                             value="Cracked housing at boss B2",
                                             reason="Clearer title")
                app.nonconformities.contain_nc(self.ref(2), action="Quarantined lot 42",
                                               disposition="quarantine")
        finally:
            app.close()

    @staticmethod
    def year() -> int:
        import datetime as dt

        return dt.datetime.now(dt.UTC).year

    def ref(self, n: int) -> str:
        return f"NC-{self.year()}-{n:04d}"

    def write_more(self, count: int = 1, start: int = 10) -> None:
        app = open_store(str(self.db))
        try:
            with app.acting_as(QUALITY, PASSWORD):
                for n in range(count):
                    app.nonconformities.raise_nc(title=f"Later finding {start + n}",
                                                 description="Burr",
                                                 source="process", severity="minor")
        finally:
            app.close()

    def sql(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        with sqlite3.connect(self.db) as db:
            for statement, params in statements:
                db.execute(statement, params)

    def rows(self) -> list[tuple[int, str, int, str, bytes]]:
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT rowid, originator_id, originator_version, topic, state "
                              "FROM stored_events ORDER BY rowid").fetchall()

    def where(self, ref: str, version: int) -> int:
        """The position (rowid) of one version of a record."""
        with sqlite3.connect(self.db) as db:
            row = db.execute("SELECT rowid FROM stored_events WHERE originator_id = ? AND "
                             "originator_version = ?", (record_uuid(ref).hex, version)).fetchone()
        return int(row[0])

    def count(self) -> int:
        return len(self.rows())

    def forget_ledger(self) -> None:
        """What an attacker with write access does to hide an edit from the ledger."""
        self.sql(("DROP TABLE IF EXISTS capa_ledger", ()),
                 ("DROP TABLE IF EXISTS capa_ledger_state", ()))


def failed_at(outcome: Outcome, position: int, record: str | None = None,
              version: int | None = None) -> str:
    assert outcome.code == 6, (outcome.stdout, outcome.stderr)
    assert outcome.stdout == ""
    message = outcome.stderr
    assert f"position {position}" in message, message
    if record is not None:
        assert f"position {position} ({record} version {version})" in message, message
    return message


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[AuditedStore]:
    store = AuditedStore(tmp_path)
    store.build()
    yield store


def checkpoint(store: AuditedStore) -> str:
    done = store.run("audit", "checkpoint")
    assert done.code == 0, done.stderr
    return done.stdout


# -- clean stores ------------------------------------------------------------------------------


def test_init_creates_a_private_key_outside_the_store_and_binds_it(audited: AuditedStore) -> None:
    assert audited.key.stat().st_mode & 0o777 == 0o600
    assert Path(f"{audited.key}.pub").is_file()
    first = audited.rows()[0]
    assert first[3].endswith("StoreInitialised")
    from capa.audit.keys import fingerprint, load_private_key

    assert json.loads(first[4])["key_fingerprint"] == fingerprint(load_private_key(audited.key))


def test_clean_store_verifies_after_reopening_and_more_writes(audited: AuditedStore) -> None:
    assert audited.run("audit", "verify").code == 0
    kept = audited.folder / "kept.checkpoint"
    kept.write_text(checkpoint(audited))
    audited.write_more(3)
    checkpoint(audited)
    done = audited.process("--json", "audit", "verify", "--against", str(kept))
    assert done.code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["events"] == audited.count()
    assert summary["checkpoints"] == 3  # the genesis checkpoint of capa init, and these two
    assert summary["kept_checkpoints"][0]["size"] < summary["events"]


def test_no_false_alarm_while_others_write(audited: AuditedStore) -> None:
    checkpoint(audited)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            audited.write_more(15, start=start)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(100 * i,)) for i in range(3)]
    for t in threads:
        t.start()
    outcomes = [audited.process("audit", "verify") for _ in range(3)]
    outcomes.append(audited.process("audit", "checkpoint"))
    for t in threads:
        t.join()
    assert not errors
    assert all(o.code == 0 for o in outcomes), [o.stderr for o in outcomes]
    assert audited.run("audit", "verify").code == 0


# -- changed, deleted, inserted, reordered events ----------------------------------------------


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_a_changed_byte_in_any_event_is_detected(audited: AuditedStore, which: str) -> None:
    checkpoint(audited)
    rows = audited.rows()
    index = {"first": 0, "middle": len(rows) // 2, "last": len(rows) - 1}[which]
    rowid, _, version, _, state = rows[index]
    # One byte inside the JSON text, so the record can still be named by its ref.
    at = state.index(b'"actor":"') + len(b'"actor":"')
    changed = state[:at] + bytes([state[at] ^ 0x01]) + state[at + 1:]
    audited.sql(("UPDATE stored_events SET state = ? WHERE rowid = ?", (changed, rowid)))
    done = audited.run("audit", "verify")
    message = failed_at(done, rowid)
    assert f"version {version})" in message
    assert "changed" in message


def test_a_changed_byte_is_found_by_its_record_and_version(audited: AuditedStore) -> None:
    assert audited.run("audit", "verify").code == 0  # the ledger has now seen every event
    position = audited.where(audited.ref(1), 2)
    state = audited.rows()[position - 1][4]
    audited.sql(("UPDATE stored_events SET state = ? WHERE rowid = ?",
                 (state.replace(b"boss B2", b"boss B3"), position)))
    failed_at(audited.run("audit", "verify"), position, audited.ref(1), 2)


def test_a_changed_event_hidden_from_the_ledger_fails_the_signed_checkpoint(
        audited: AuditedStore) -> None:
    checkpoint(audited)
    position = audited.where(audited.ref(2), 1)
    state = audited.rows()[position - 1][4]
    audited.sql(("UPDATE stored_events SET state = ? WHERE rowid = ?",
                 (state.replace(b"major", b"minor"), position)))
    audited.forget_ledger()
    done = audited.run("audit", "verify")
    assert done.code == 6
    assert "no longer have the signed root" in done.stderr


def test_a_deleted_event_in_the_middle_is_detected(audited: AuditedStore) -> None:
    checkpoint(audited)
    position = audited.where(audited.ref(2), 1)
    audited.sql(("DELETE FROM stored_events WHERE rowid = ?", (position,)))
    message = failed_at(audited.run("audit", "verify"), position, audited.ref(2), 1)
    assert "deleted, inserted or reordered" in message


def test_a_deleted_tail_event_is_detected(audited: AuditedStore) -> None:
    checkpoint(audited)
    last = audited.count()
    ref, version = audited.ref(2), 2
    assert audited.where(ref, version) == last
    audited.sql(("DELETE FROM stored_events WHERE rowid = ?", (last,)))
    failed_at(audited.run("audit", "verify"), last, ref, version)


def test_a_deleted_tail_event_hidden_from_the_ledger_fails_a_later_checkpoint(
        audited: AuditedStore) -> None:
    checkpoint(audited)
    last = audited.count()
    audited.sql(("DELETE FROM stored_events WHERE rowid = ?", (last,)))
    audited.forget_ledger()
    message = failed_at(audited.run("audit", "verify"), last)
    assert f"covers {last} events but the store holds {last - 1}" in message


def test_an_inserted_event_is_detected(audited: AuditedStore) -> None:
    checkpoint(audited)
    rows = audited.rows()
    at = len(rows) // 2
    forged = rows[at - 1]
    # Make room at `at` by moving every later event up one rowid, highest first.
    with sqlite3.connect(audited.db) as db:
        for rowid in range(len(rows), at - 1, -1):
            db.execute("UPDATE stored_events SET rowid = ? WHERE rowid = ?", (rowid + 1, rowid))
        db.execute("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, "
                   "state) VALUES (?, ?, ?, ?, ?)",
                   (at, forged[1], 99, forged[3], forged[4]))
    message = failed_at(audited.run("audit", "verify"), at)
    assert "version 99" in message


def test_swapped_states_are_detected(audited: AuditedStore) -> None:
    checkpoint(audited)
    a, b = audited.where(audited.ref(1), 1), audited.where(audited.ref(3), 1)
    rows = audited.rows()
    audited.sql(("UPDATE stored_events SET state = ? WHERE rowid = ?", (rows[b - 1][4], a)),
                ("UPDATE stored_events SET state = ? WHERE rowid = ?", (rows[a - 1][4], b)))
    failed_at(audited.run("audit", "verify"), a, audited.ref(1), 1)


def test_reordered_events_are_detected(audited: AuditedStore) -> None:
    checkpoint(audited)
    a, b = audited.where(audited.ref(1), 1), audited.where(audited.ref(2), 1)
    audited.sql(("UPDATE stored_events SET rowid = -1 WHERE rowid = ?", (a,)),
                ("UPDATE stored_events SET rowid = ? WHERE rowid = ?", (a, b)),
                ("UPDATE stored_events SET rowid = ? WHERE rowid = -1", (b,)))
    message = failed_at(audited.run("audit", "verify"), a, audited.ref(1), 1)
    assert f"{audited.ref(2)} version 1" in message


# -- checkpoints -------------------------------------------------------------------------------


def _edit_log(store: AuditedStore, edit: str) -> None:
    text = store.log.read_text(encoding="utf-8")
    lines = text.split("\n")
    if edit == "size":
        lines[1] = str(int(lines[1]) - 1)
    elif edit == "root":
        root = bytearray(base64.b64decode(lines[2]))
        root[0] ^= 0x01
        lines[2] = base64.b64encode(bytes(root)).decode()
    else:
        name, blob = lines[5].rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 0x01
        lines[5] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    store.log.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("edit", ["size", "root", "signature"])
def test_a_forged_checkpoint_is_detected(audited: AuditedStore, edit: str) -> None:
    checkpoint(audited)
    _edit_log(audited, edit)
    done = audited.run("audit", "verify")
    assert done.code == 6
    assert "checkpoint 1 of" in done.stderr
    assert "forged or damaged" in done.stderr


def test_a_deleted_checkpoint_is_caught_by_the_copy_kept_elsewhere(audited: AuditedStore) -> None:
    kept = audited.folder / "kept.checkpoint"
    kept.write_text(checkpoint(audited))
    last = audited.count()
    # The attacker removes the tail event, the ledger and the checkpoint that covered it.
    audited.sql(("DELETE FROM stored_events WHERE rowid = ?", (last,)))
    audited.forget_ledger()
    audited.log.unlink()
    # A bound store whose log went missing fails (SPEC §9.4), naming the log and the way out.
    gone = audited.run("audit", "verify")
    assert gone.code == 6 and f"checkpoint log {audited.log} is missing" in gone.stderr
    assert "--against" in gone.stderr and "--checkpoints" in gone.stderr
    # An emptied log leaves nothing in the store to notice; the kept copy still does.
    audited.log.touch()
    assert audited.run("audit", "verify").code == 0
    done = audited.run("audit", "verify", "--against", str(kept))
    message = failed_at(done, last)
    assert f"covers {last} events but the store holds {last - 1}" in message


def _rewrite_history(store: AuditedStore) -> int:
    """Change an early event, then make ledger and checkpoint log consistent with it."""
    position = store.where(store.ref(1), 1)
    state = store.rows()[position - 1][4]
    store.sql(("UPDATE stored_events SET state = ? WHERE rowid = ?",
               (state.replace(b"process", b"product"), position)))
    store.forget_ledger()
    store.log.unlink()
    checkpoint(store)
    return position


def test_history_rewritten_and_resigned_with_the_same_key_fails_the_kept_checkpoint(
        audited: AuditedStore) -> None:
    kept = audited.folder / "kept.checkpoint"
    kept.write_text(checkpoint(audited))
    audited.write_more(2)
    _rewrite_history(audited)
    assert audited.run("audit", "verify").code == 0  # consistent in itself
    done = audited.run("audit", "verify", "--against", str(kept))
    assert done.code == 6
    assert "not an extension of the kept checkpoint" in done.stderr
    assert "history before it was rewritten" in done.stderr
    # The standalone verifier reaches the same verdict from an export.
    bundle = audited.folder / "bundle"
    assert audited.run("audit", "export", "--out", str(bundle)).code == 0
    script = subprocess.run([sys.executable, str(SCRIPT), str(bundle), "--checkpoint",
                             str(kept)], capture_output=True, text=True)
    assert script.returncode == 6
    assert "rewritten" in script.stderr


def test_history_rewritten_and_resigned_with_a_new_key_fails_the_kept_checkpoint(
        audited: AuditedStore) -> None:
    kept = audited.folder / "kept.checkpoint"
    kept.write_text(checkpoint(audited))
    old_public = audited.folder / "trusted.pem"
    shutil.copy(f"{audited.key}.pub", old_public)
    audited.key.unlink()
    Path(f"{audited.key}.pub").unlink()
    from capa.audit.keys import create_store_key

    new_fingerprint = create_store_key(audited.key)
    # A thorough attacker also rewrites the key fingerprint in the store's first event.
    first = audited.rows()[0]
    data = json.loads(first[4])
    data["key_fingerprint"] = new_fingerprint
    audited.sql(("UPDATE stored_events SET state = ? WHERE rowid = 1",
                 (json.dumps(data, separators=(",", ":")).encode(),)))
    _rewrite_history(audited)
    assert audited.run("audit", "verify").code == 0
    done = audited.run("audit", "verify", "--against", str(kept))
    assert done.code == 6
    assert "kept checkpoint" in done.stderr and "another key" in done.stderr
    done = audited.run("audit", "verify", "--public-key", str(old_public))
    assert done.code == 6
    assert "checkpoint 1 of" in done.stderr


def test_a_replaced_key_without_rewriting_the_first_event_is_detected(
        audited: AuditedStore) -> None:
    audited.key.unlink()
    Path(f"{audited.key}.pub").unlink()
    from capa.audit.keys import create_store_key

    create_store_key(audited.key)
    # The genesis checkpoint of capa init is signed by the old key: it gives the new one away.
    kept = audited.run("audit", "verify")
    assert kept.code == 6 and "checkpoint 1 of" in kept.stderr
    assert "signed by another key" in kept.stderr
    # An adversary who also empties the log is caught by the first event's fingerprint.
    audited.log.write_text("")
    checkpoint(audited)
    message = failed_at(audited.run("audit", "verify"), 1)
    assert "the store key was replaced" in message


# -- bundles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bundle", "bundle.zip"])
def test_an_exported_bundle_verifies_offline_and_a_tampered_one_fails(
        audited: AuditedStore, name: str) -> None:
    kept = audited.folder / "kept.checkpoint"
    kept.write_text(checkpoint(audited))
    audited.write_more(2)
    out = audited.folder / name
    done = audited.run("--json", "audit", "export", "--out", str(out))
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["events"] == audited.count()
    # verify-bundle needs neither a store nor a login.
    elsewhere = AuditedStore(audited.folder / "nowhere")
    (audited.folder / "nowhere").mkdir()
    verified = run_capa(["audit", "verify-bundle", str(out), "--checkpoint", str(kept),
                         "--public-key", f"{audited.key}.pub"],
                        env={**elsewhere.env(), "CAPA_USER": None, "CAPA_PASSWORD": None})
    assert verified.code == 0
    script = subprocess.run([sys.executable, str(SCRIPT), str(out), "--checkpoint", str(kept)],
                            capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith(f"OK: {audited.count()} events")

    if name.endswith(".zip"):
        return
    events = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    third = json.loads(events[2])
    state = bytearray(base64.b64decode(third["state_b64"]))
    state[5] ^= 0x01
    third["state_b64"] = base64.b64encode(bytes(state)).decode()
    events[2] = json.dumps(third)
    (out / "events.jsonl").write_text("\n".join(events) + "\n", encoding="utf-8")
    done = audited.run("audit", "verify-bundle", str(out))
    failed_at(done, 3)
    script = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True,
                            text=True)
    assert script.returncode == 6
    assert re.search(r"position 3\b", script.stderr)


def test_prove_gives_inclusion_proofs_that_verify_against_the_checkpoint(
        audited: AuditedStore) -> None:
    checkpoint(audited)
    done = audited.run("--json", "audit", "prove", audited.ref(1))
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    from capa.audit.keys import load_public_key
    from capa.audit.merkle import verify_inclusion
    from capa.audit.notes import verify_checkpoint

    signed = verify_checkpoint(result["checkpoint"], load_public_key(f"{audited.key}.pub"))
    assert [e["version"] for e in result["events"]] == [1, 2]
    for event in result["events"]:
        verify_inclusion(event["position"] - 1, signed.size, bytes.fromhex(event["leaf_hash"]),
                         [bytes.fromhex(h) for h in event["proof"]], signed.root_hash)
    assert audited.run("audit", "prove", "NC-1999-0001").code == 3
