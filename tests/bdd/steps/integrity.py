"""Steps of features/audit/integrity.feature: an auditor verifies the audit trail.

On both back ends: someone with database access edits the SQLite file's event table, or the
PostgreSQL one (positions are SQLite rowids and PostgreSQL notification ids), directly in SQL.

Size: one feature's steps and its scene (a store made by `capa init`, its key and checkpoint
log); each tampering and what the auditor is told about it sit side by side.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from capa.adapters.target import parse_target
from capa.app.store import open_store
from capa.domain.nonconformity import Nonconformity
from tests.support.backends import query
from tests.support.cast import AUDITOR, FULL_NAMES, PASSWORD
from tests.support.cast import QUALITY_ENGINEER as QUALITY
from tests.support.cast import QUALITY_MANAGER as OWNER
from tests.support.cli import ROOT, run_capa

SCRIPT = ROOT / "scripts" / "verify_bundle.py"


@dataclass
class AuditScene:
    """One store made by `capa init`, its key and checkpoint log, and the last outcome."""

    folder: Path
    target: str
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    refs: dict[str, str] = field(default_factory=dict)
    bundle: Path | None = None

    @property
    def log(self) -> Path:
        """The default checkpoint log: next to a SQLite file, beside the configured key for a
        server store."""
        if parse_target(self.target).kind == "sqlite":
            return Path(f"{self.target}.checkpoints")
        return self.folder / "capa-audit.checkpoints"

    def run(self, *args: str, user: str | None = AUDITOR, db: str | None = None) -> int:
        env = {"CAPA_DB": db or self.target, "CAPA_USER": user,
               "CAPA_PASSWORD": PASSWORD if user else None,
               "CAPA_KEY": None if parse_target(self.target).kind == "sqlite"
               else str(self.folder / "capa-audit.key"), "CAPA_CHECKPOINTS": None,
               "CAPA_SESSION_DIR": str(self.folder / "sessions")}
        outcome = run_capa(args, env=env, cwd=self.folder)
        self.code, self.stdout, self.stderr = outcome.code, outcome.stdout, outcome.stderr
        assert "Traceback" not in self.stdout + self.stderr
        return self.code

    def raise_ncs(self, count: int, start: int) -> None:
        app = open_store(self.target)
        try:
            with app.acting_as(QUALITY, PASSWORD):
                for n in range(start, start + count):
                    ref = app.nonconformities.raise_nc(title=f"Finding {n}",
                                                       description="Seen at inspection",
                                                       source="process", severity="minor").id
                    app.nonconformities.contain_nc(ref, action="Segregated",
                                                   disposition="quarantine")
        finally:
            app.close()

    def rows(self) -> list[tuple[int, bytes]]:
        return [(int(p), bytes(s)) for p, s in
                query(self.target, "SELECT rowid, state FROM stored_events ORDER BY rowid")]

    def sql(self, statement: str, *params: object) -> None:
        """One statement in SQLite's words, on either back end (tests.support.backends.query)."""
        query(self.target, statement, *params)


@pytest.fixture
def scene(tmp_path: Path, store_target: str) -> Iterator[AuditScene]:
    yield AuditScene(tmp_path, store_target)


@given(parsers.parse('an audited store for "{organisation}" with some quality records'))
def an_audited_store(scene: AuditScene, organisation: str) -> None:
    assert scene.run("init", "--admin", OWNER, "--full-name", FULL_NAMES[OWNER], "--org",
                     organisation, user=OWNER) == 0, scene.stderr
    app = open_store(scene.target)
    try:
        with app.acting_as(OWNER, PASSWORD):
            app.identity.add_user(QUALITY, full_name=FULL_NAMES[QUALITY], roles=["quality",
                                                                                 "reporter"],
                                  password=PASSWORD)
            app.identity.add_user(AUDITOR, full_name=FULL_NAMES[AUDITOR], roles=["auditor"],
                                  password=PASSWORD)
    finally:
        app.close()
    scene.raise_ncs(3, 1)


@given("the store's owner has signed a checkpoint")
def owner_signs(scene: AuditScene) -> None:
    assert scene.run("audit", "checkpoint", user=OWNER) == 0, scene.stderr


@given("more nonconformities were raised since")
def more_ncs(scene: AuditScene) -> None:
    scene.raise_ncs(2, 10)


def _ordinal(text: str) -> int:
    return int(text.rstrip("stndrh"))


@given(parsers.re(r"someone with database access changed one byte of the (?P<n>\w+) event"))
def change_byte(scene: AuditScene, n: str) -> None:
    rowid, state = scene.rows()[_ordinal(n) - 1]
    changed = bytearray(state)
    changed[len(changed) // 2] ^= 0x01
    scene.sql("UPDATE stored_events SET state = ? WHERE rowid = ?", bytes(changed), rowid)


@given(parsers.re(r"someone with database access deleted the (?P<n>\d+\w\w) event"))
def delete_event(scene: AuditScene, n: str) -> None:
    scene.sql("DELETE FROM stored_events WHERE rowid = ?", _ordinal(n))


@given("someone with database access deleted the last event")
def delete_last(scene: AuditScene) -> None:
    scene.sql("DELETE FROM stored_events WHERE rowid = ?", len(scene.rows()))


@given(parsers.re(r"someone with database access inserted an event before the (?P<n>\w+) "
                  r"event"))
def insert_event(scene: AuditScene, n: str) -> None:
    at, total = _ordinal(n), len(scene.rows())
    for rowid in range(total, at - 1, -1):
        scene.sql("UPDATE stored_events SET rowid = ? WHERE rowid = ?", rowid + 1, rowid)
    scene.sql("INSERT INTO stored_events (rowid, originator_id, originator_version, topic, "
              "state) VALUES (?, ?, 1, 'capa.domain.nonconformity:Nonconformity.Raised', ?)",
              at, "ab" * 16, b'{"forged":true}')


@given(parsers.re(r"someone with database access swapped the (?P<a>\w+) and the (?P<b>\w+) "
                  r"events"))
def swap_events(scene: AuditScene, a: str, b: str) -> None:
    first, second = _ordinal(a), _ordinal(b)
    scene.sql("UPDATE stored_events SET rowid = -1 WHERE rowid = ?", first)
    scene.sql("UPDATE stored_events SET rowid = ? WHERE rowid = ?", first, second)
    scene.sql("UPDATE stored_events SET rowid = ? WHERE rowid = -1", second)


@given("someone edited the size of the signed checkpoint")
def forge_checkpoint(scene: AuditScene) -> None:
    lines = scene.log.read_text(encoding="utf-8").split("\n")
    lines[1] = str(int(lines[1]) - 1)
    scene.log.write_text("\n".join(lines), encoding="utf-8")


@given("someone moved the checkpoint log away")
def move_log(scene: AuditScene) -> None:
    scene.log.rename(scene.folder / "moved.checkpoints")


@given("the auditor kept a copy of the latest checkpoint")
def keep_checkpoint(scene: AuditScene) -> None:
    # Quality takes the checkpoint (auditors never change the store, SPEC §9.6); the auditor
    # keeps the printed copy.
    assert scene.run("audit", "checkpoint", user=QUALITY) == 0, scene.stderr
    (scene.folder / "kept.checkpoint").write_text(scene.stdout, encoding="utf-8")


@given("someone rewrote an early event, rebuilt the ledger and signed a new checkpoint")
def rewrite_history(scene: AuditScene) -> None:
    rowid, state = scene.rows()[4]  # the first nonconformity raised
    assert b"minor" in state
    scene.sql("UPDATE stored_events SET state = ? WHERE rowid = ?",
              state.replace(b"minor", b"major"), rowid)
    scene.sql("DROP TABLE capa_ledger")
    scene.sql("DROP TABLE capa_ledger_state")
    scene.log.unlink()
    assert scene.run("audit", "checkpoint", user=OWNER) == 0, scene.stderr
    assert scene.run("audit", "verify") == 0, "a rewrite consistent in itself passes alone"


@given(parsers.parse('the nonconformity "{alias}" was closed with a signature'))
def closed_with_signature(scene: AuditScene, alias: str) -> None:
    app = open_store(scene.target)
    try:
        with app.acting_as(QUALITY, PASSWORD):
            ref = app.nonconformities.raise_nc(title="Burr on flange", description="Goods-in",
                                               source="supplier", severity="minor").id
            app.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                          rationale="Cosmetic only")
            app.nonconformities.close_nc(ref)
    finally:
        app.close()
    scene.refs[alias] = ref


@given("someone changed one byte of an event in the bundle")
def tamper_bundle(scene: AuditScene) -> None:
    assert scene.bundle is not None
    events = (scene.bundle / "events.jsonl").read_text(encoding="utf-8").splitlines()
    event = json.loads(events[1])
    state = bytearray(base64.b64decode(event["state_b64"]))
    state[3] ^= 0x01
    event["state_b64"] = base64.b64encode(bytes(state)).decode()
    events[1] = json.dumps(event)
    (scene.bundle / "events.jsonl").write_text("\n".join(events) + "\n", encoding="utf-8")


@given("someone changed the title and the actor of a raised nonconformity in the bundle")
def forge_readable_fields(scene: AuditScene) -> None:
    assert scene.bundle is not None
    events = scene.bundle / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    raised = next(line for line in lines if line["type"] == "Nonconformity.Raised")
    raised["data"]["title"] = "Nothing to see"
    raised["actor"] = OWNER
    scene.refs["forged"] = f"position {raised['position']} ({raised['record']} version 1)"
    scene.refs["forged_id"] = f"position {raised['position']} (record {raised['record_id']} "
    events.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    # The manifest is not signed: whoever edits the bundle recomputes it too.
    manifest = json.loads((scene.bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["sha256"]["events.jsonl"] = hashlib.sha256(events.read_bytes()).hexdigest()
    (scene.bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@given("the nonconformities were listed, so the read tables hold them")
def listed(scene: AuditScene) -> None:
    assert scene.run("--json", "nc", "list") == 0, scene.stderr
    scene.refs.update((nc["title"], nc["id"]) for nc in json.loads(scene.stdout))


@given(parsers.parse('someone with database access changed the title of "{title}" in the read '
                     "tables"))
def edit_read_table(scene: AuditScene, title: str) -> None:
    scene.refs["edited"] = scene.refs[title]
    scene.sql("UPDATE nc_summary SET title = 'Nothing to see', doc = replace(doc, ?, "
              "'Nothing to see') WHERE id = ?", title, scene.refs[title])


@given("the quality manager rebuilt the read models")
def rebuilt(scene: AuditScene) -> None:
    assert scene.run("readmodels", "rebuild", user=OWNER) == 0, scene.stderr


@when("the auditor verifies the store")
def verify(scene: AuditScene) -> None:
    scene.run("audit", "verify")


@when("the auditor verifies the store against the kept checkpoint")
def verify_against(scene: AuditScene) -> None:
    scene.run("audit", "verify", "--against", str(scene.folder / "kept.checkpoint"))


@when("the auditor verifies the store with the checkpoint log where it was moved")
def verify_with_moved_log(scene: AuditScene) -> None:
    scene.run("audit", "verify", "--checkpoints", str(scene.folder / "moved.checkpoints"))


@when("the auditor exports an evidence bundle")
def export(scene: AuditScene) -> None:
    scene.bundle = scene.folder / "evidence"
    assert scene.run("audit", "export", "--out", str(scene.bundle)) == 0, scene.stderr


@when(parsers.parse('the auditor views "{alias}" as it stood just before its signature'),
      target_fixture="seen")
def view_before_signature(scene: AuditScene, alias: str) -> dict[str, object]:
    ref = scene.refs[alias]
    assert scene.run("--json", "history", ref) == 0, scene.stderr
    signature = next(e["signature"] for e in json.loads(scene.stdout) if e["signature"])
    signed_at = dt.datetime.fromisoformat(signature["signed_at"].replace("Z", "+00:00"))
    before = (signed_at - dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    assert scene.run("--json", "nc", "show", ref, "--as-of", before) == 0, scene.stderr
    return {"ref": ref, "signature": signature, "view": json.loads(scene.stdout)}


@then("the audit trail is intact")
def intact(scene: AuditScene) -> None:
    assert scene.code == 0, scene.stderr
    assert scene.stdout.startswith("verified:")


@then("the verification fails because the checkpoint log is missing")
def fails_without_log(scene: AuditScene) -> None:
    assert scene.code == 6, (scene.stdout, scene.stderr)
    assert "checkpoint log" in scene.stderr and "is missing" in scene.stderr


@then(parsers.parse("the verification fails and names position {position} as the first "
                    "damaged event"))
def fails_at(scene: AuditScene, position: str) -> None:
    assert scene.code == 6, (scene.stdout, scene.stderr)
    expected = len(scene.rows()) + 1 if position == "last" else int(position)
    assert f"position {expected} (" in scene.stderr, scene.stderr
    assert " version " in scene.stderr


@then("the record, its history and the export still show the title that was recorded")
def record_unchanged(scene: AuditScene) -> None:
    ref = scene.refs["edited"]
    assert scene.run("--json", "nc", "show", ref) == 0, scene.stderr
    assert json.loads(scene.stdout)["title"] == "Finding 1"
    assert scene.run("history", ref) == 0 and "Nothing to see" not in scene.stdout
    assert scene.run("--json", "export", "--format", "csv") == 0, scene.stderr
    titles = {row["id"]: row["title"] for row in json.loads(scene.stdout)}
    assert titles[ref] == "Finding 1"


@then("the verification fails and names the read table and the nonconformity")
def fails_naming_cache(scene: AuditScene) -> None:
    assert scene.code == 6, (scene.stdout, scene.stderr)
    assert f"mismatch: nc_summary {scene.refs['edited']}: differs from the events in title" \
        in scene.stdout.splitlines()[0]


@then("the verification fails because a checkpoint is forged")
def fails_forged(scene: AuditScene) -> None:
    assert scene.code == 6
    assert "forged or damaged" in scene.stderr


@then("the verification fails because the history before the kept checkpoint was rewritten")
def fails_rewritten(scene: AuditScene) -> None:
    assert scene.code == 6
    assert "history before it was rewritten" in scene.stderr


@then("the bundle verifies without the store")
def bundle_verifies(scene: AuditScene) -> None:
    assert scene.bundle is not None
    # CAPA_DB names a place where no store is (and no server database), as on an auditor's desk.
    nowhere = str(scene.folder / "no-store-here" / "capa.db")
    assert scene.run("audit", "verify-bundle", str(scene.bundle), user=None, db=nowhere) == 0, \
        scene.stderr
    assert not Path(nowhere).parent.exists()


@then("the standalone verifier accepts the bundle")
def script_accepts(scene: AuditScene) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), str(scene.bundle)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


@then("the bundle no longer verifies")
def bundle_fails(scene: AuditScene) -> None:
    assert scene.run("audit", "verify-bundle", str(scene.bundle), user=None) == 6
    assert "position 2 (" in scene.stderr
    done = subprocess.run([sys.executable, str(SCRIPT), str(scene.bundle)], capture_output=True,
                          text=True)
    assert done.returncode == 6


@then("the bundle no longer verifies because what it shows is not what was stored")
def bundle_shows_forgery(scene: AuditScene) -> None:
    assert scene.run("audit", "verify-bundle", str(scene.bundle), user=None) == 6
    assert f"{scene.refs['forged']}: the readable field actor reads" in scene.stderr
    done = subprocess.run([sys.executable, str(SCRIPT), str(scene.bundle)], capture_output=True,
                          text=True)
    assert done.returncode == 6
    assert f"{scene.refs['forged_id']}version 1): the readable field actor" in done.stderr


@then("the view is the version the signature names")
def view_is_signed_version(seen: dict[str, object]) -> None:
    view, signature = seen["view"], seen["signature"]
    assert isinstance(view, dict) and isinstance(signature, dict)
    assert view["version"] == signature["signed_version"]


@then("the signature's content digest is that of the view")
def digest_matches(scene: AuditScene, seen: dict[str, object]) -> None:
    view, signature = seen["view"], seen["signature"]
    assert isinstance(view, dict) and isinstance(signature, dict)
    # As docs/audit.md tells an auditor to recompute it from the view alone ...
    content = {k: v for k, v in view.items() if k not in ("kind", "created_at", "updated_at")}
    content["ref"] = content["id"]
    for entry in content["containment"]:
        if entry.get("location") is None:
            entry.pop("location", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == signature["content_sha256"]
    # ... and as the record itself gives it.
    app = open_store(scene.target)
    try:
        record: Nonconformity = app.repository.get(Nonconformity.create_id(str(seen["ref"])),
                                    version=int(view["version"]))
        state = {"id": record.ref, "version": record.version, **record.fields()}
        canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == signature["content_sha256"]
        assert record.title == view["title"] and record.status == view["status"]
    finally:
        app.close()


# -- a witness (SPEC §9.8) -----------------------------------------------------------------------


@given("the QA head's witness has cosigned the latest checkpoint")
def witness_cosigned(scene: AuditScene) -> None:
    witness = scene.folder / "witness"
    assert scene.run("audit", "witness", "init", "--name", "qa-head.example/w1", "--dir",
                     str(witness), user=None) == 0, scene.stderr
    scene.refs["witness"] = scene.stdout.strip()
    assert scene.run("audit", "checkpoint", user=OWNER) == 0, scene.stderr
    latest = scene.folder / "latest.checkpoint"
    latest.write_text(scene.stdout, encoding="utf-8")
    assert scene.run("audit", "witness", "cosign", str(latest), "--dir", str(witness),
                     user=None) == 0, scene.stderr


@when("the store's owner asks the witness to cosign the new checkpoint")
def ask_witness(scene: AuditScene) -> None:
    assert scene.run("audit", "checkpoint", user=OWNER) == 0, scene.stderr
    new = scene.folder / "new.checkpoint"
    new.write_text(scene.stdout, encoding="utf-8")
    # No event was added since the witness cosigned: the proof for equal sizes is empty.
    proof = scene.folder / "new.proof"
    proof.write_text(f"old {scene.stdout.splitlines()[1]}\n", encoding="utf-8")
    scene.run("audit", "witness", "cosign", str(new), "--dir", str(scene.folder / "witness"),
              "--proof", str(proof), user=None)


@then("the witness refuses because the history it cosigned was rewritten")
def witness_refuses(scene: AuditScene) -> None:
    assert scene.code == 6, (scene.stdout, scene.stderr)
    assert scene.stdout == ""
    assert "the history was rewritten" in scene.stderr


@when("the auditor verifies the store requiring the witness's cosignature")
def verify_with_witness(scene: AuditScene) -> None:
    scene.run("audit", "verify", "--witness", scene.refs["witness"])


@then("the verification fails because the witness cosigned none of the checkpoints")
def fails_uncosigned(scene: AuditScene) -> None:
    assert scene.code == 6, (scene.stdout, scene.stderr)
    assert "cosignature by witness qa-head.example/w1" in scene.stderr
