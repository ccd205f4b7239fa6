"""`capa audit` on the command line: outputs, exit codes, who may run it, and no store or login
needed to verify a bundle."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from capa.audit.checkpoints import CheckpointLog
from capa.cli.main import cli
from tests.support.backends import new_target, query

if TYPE_CHECKING:
    from conftest import Capa, Outcome


def test_the_audit_commands_exist() -> None:
    audit = cli.get_command(None, "audit")  # type: ignore[arg-type]
    assert audit is not None
    assert sorted(audit.list_commands(None)) == [  # type: ignore[attr-defined]
        "checkpoint", "consistency", "export", "prove", "review", "verify", "verify-bundle",
        "vkey", "witness"]


def test_init_reports_the_key_and_its_fingerprint(fresh: Capa) -> None:
    done = fresh.run("--json", "init", "--admin", "mhernandez", "--full-name",
                     "Maria Hernandez", user=None, CAPA_PASSWORD=fresh.password)
    assert done.code == 0, done.stderr
    result = done.json()
    assert (fresh.folder / result["key"]).resolve() == fresh.key.resolve()
    assert fresh.key.is_file()
    assert len(result["key_fingerprint"]) == 64
    # A key already in the way of a new store is refused before any store is made.
    other = new_target(fresh.backend, fresh.folder, "other.db")
    blocked = fresh.run("--db", other, "init", "--admin", "mhernandez", "--full-name",
                        "Maria Hernandez", "--key", str(fresh.key), user=None,
                        CAPA_PASSWORD=fresh.password)
    assert blocked.code == 2
    assert "already exists" in blocked.stderr
    assert not fresh.exists(other)


def test_checkpoint_verify_and_prove_with_json(capa: Capa) -> None:
    nc = capa.nc()
    first = capa.run("--json", "audit", "checkpoint")
    assert first.code == 0, first.stderr
    checkpoint = first.json()
    assert checkpoint["size"] == capa.events()
    assert checkpoint["note"].startswith(f"{checkpoint['origin']}\n{checkpoint['size']}\n")
    verified = capa.run("--json", "audit", "verify", user=capa.reporter)
    assert verified.code == 0, verified.stderr
    assert verified.json()["status"] == "verified"
    # The genesis checkpoint taken by capa init, and this one.
    assert verified.json()["checkpoints"] == 2
    proved = capa.run("--json", "audit", "prove", nc)
    assert proved.code == 0, proved.stderr
    assert proved.json()["checkpoint"] == checkpoint["note"]
    assert [e["version"] for e in proved.json()["events"]] == [1]
    human = capa.run("audit", "prove", nc)
    assert human.stdout.startswith(f"{nc}: 1 event(s) in a tree of {checkpoint['size']}")


def test_history_diff_prints_only_what_changed(capa: Capa) -> None:
    nc = capa.nc()
    capa.write("nc", "amend", nc, "--field", "severity", "--value", "critical", "--reason",
               "Patient contact confirmed", user=capa.quality_engineer)
    done = capa.run("history", nc, "--diff")
    assert done.code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("Amended: severity: major -> critical  "
                             "(reason: Patient contact confirmed)")
    as_json = capa.run("--json", "history", nc, "--diff").json()
    assert as_json[1]["changes"] == [{"field": "severity", "old": "major", "new": "critical"}]


def test_verify_bundle_needs_no_store_and_no_login(capa: Capa) -> None:
    capa.nc()
    bundle = capa.folder / "evidence.zip"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    capa.remove()
    done = capa.process("--json", "audit", "verify-bundle", str(bundle), user=None)
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "verified"
    assert not capa.exists()
    missing = capa.process("audit", "verify-bundle", str(capa.folder / "nothing.zip"), user=None)
    assert missing.code == 3


def test_audit_commands_on_a_missing_store_exit_3(fresh: Capa) -> None:
    for args in (("audit", "verify"), ("audit", "checkpoint"), ("audit", "prove", "NC-2026-0001")):
        done = fresh.run(*args)
        assert done.code == 3, (args, done.stderr)
        assert not fresh.exists()


def test_verification_failure_is_one_line_with_exit_6(capa: Capa) -> None:
    capa.nc()
    assert capa.run("audit", "checkpoint").code == 0
    last = query(capa.target, "SELECT MAX(rowid) FROM stored_events")[0][0]
    query(capa.target, "UPDATE stored_events SET topic = topic || 'x' WHERE rowid = ?", last)
    done = capa.run("--json", "audit", "verify")
    assert done.code == 6
    error = done.error()
    assert error["code"] == 6
    assert f"position {last} (" in error["message"]


# -- readable fields of a bundle ---------------------------------------------------------------

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_bundle.py"

#: field forged -> (how, the field the failure names)
FORGERIES: dict[str, tuple[Any, str]] = {
    "title": (lambda line: line["data"].update(title="Forged"), "data.title"),
    "actor": (lambda line: line.update(actor="mallory"), "actor"),
    "time": (lambda line: line.update(time="2020-01-01T00:00:00Z"), "time"),
    "type": (lambda line: line.update(type="Nonconformity.Closed"), "type"),
    "record": (lambda line: line.update(record="NC-2026-9999"), "record"),
}


def verify_both(capa: Capa, bundle: Path) -> tuple[Outcome, subprocess.CompletedProcess[str]]:
    by_capa = capa.run("audit", "verify-bundle", str(bundle), user=None)
    by_script = subprocess.run([sys.executable, "-I", str(SCRIPT), str(bundle)],
                               capture_output=True, text=True, timeout=60)
    return by_capa, by_script


@pytest.mark.parametrize("field", list(FORGERIES))
def test_a_forged_readable_field_fails_both_bundle_verifiers(capa: Capa, field: str) -> None:
    nc = capa.nc("Scratched lens")
    bundle = capa.folder / "evidence"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    by_capa, by_script = verify_both(capa, bundle)
    assert by_capa.code == 0, by_capa.stderr
    assert by_script.returncode == 0, by_script.stderr

    events = bundle / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    raised = next(line for line in lines if line["record"] == nc)
    assert (raised["type"], raised["actor"], raised["data"]["title"]) == (
        "Nonconformity.Raised", capa.reporter, "Scratched lens")
    forge, label = FORGERIES[field]
    forge(raised)
    events.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                      encoding="utf-8")
    # The manifest is not signed: whoever edits the bundle recomputes it.
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["sha256"]["events.jsonl"] = hashlib.sha256(events.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    by_capa, by_script = verify_both(capa, bundle)
    where = raised["position"]
    assert by_capa.code == 6, by_capa.stderr
    assert f"position {where} ({nc} version 1): the readable field {label} reads" in \
        by_capa.stderr
    assert by_script.returncode == 6, by_script.stderr
    assert by_script.stderr.startswith(
        f"FAIL: position {where} (record {raised['record_id']} version 1): "
        f"the readable field {label} reads")
    assert "Traceback" not in by_script.stderr


# -- a signature's content digest, recomputed as docs/audit.md says --------------------------


def documented_digest(shown: dict[str, Any]) -> str:
    """The recipe of docs/audit.md ("Signatures and what the signer saw"), step by step."""
    view = dict(shown)
    for key in ("kind", "created_at", "updated_at", "root_cause"):
        view.pop(key, None)
    view["ref"] = view["id"]
    for entry in view.get("containment", []):
        if entry.get("location") is None:
            entry.pop("location", None)
    canonical = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_the_documented_recipe_gives_each_signature_content_digest(capa: Capa) -> None:
    recipe = (capa.root / "docs" / "audit.md").read_text(encoding="utf-8")
    for step in ('view.pop(key, None)', 'view["ref"] = view["id"]',
                 'for key in ("kind", "created_at", "updated_at", "root_cause"):',
                 'separators=(",", ":"), ensure_ascii=False'):
        assert step in recipe
    nc = capa.nc("Burr on flange")
    capa.write("nc", "contain", nc, "--action", "Lot held", user=capa.quality_engineer)
    capa.write("nc", "contain", nc, "--action", "Lot sorted", "--disposition", "rework",
               "--location", "Goods-in, bay 2 — Ürümqi", user=capa.quality_engineer)
    capa.write("nc", "assess", nc, "--impact", "1", "--likelihood", "1", "--no-capa-required",
               "--rationale", "Cosmetic only", user=capa.quality_engineer)
    capa.write("nc", "close", nc)
    ca = capa.approved_ca(capa.assessed_nc())
    capa.write("ca", "extend", ca, "A2", "--due", capa.day(40), "--reason", "Lead time")
    capa.write("ca", "complete", ca, "A1", "--note", "312 sorted", user=capa.technician)
    capa.write("ca", "complete", ca, "A2", "--note", "Insert replaced", user=capa.owner)
    capa.write("ca", "verify", ca, "--effective", "--note", "No cracks in 3 lots",
               user=capa.verifier)
    capa.write("ca", "close", ca)
    checked = 0
    for kind, ref in (("nc", nc), ("ca", ca)):
        history = capa.run("--json", "history", ref)
        assert history.code == 0, history.stderr
        for entry in history.json():
            signature = entry["signature"]
            if signature is None:
                continue
            shown = capa.run("--json", kind, "show", ref, "--version",
                             str(signature["signed_version"]))
            assert shown.code == 0, shown.stderr
            assert documented_digest(shown.json()) == signature["content_sha256"], (ref, entry)
            checked += 1
    assert checked >= 4  # the NC's closure; the CA's approval, verification, closure


# -- unambiguous bundles (SPEC §9.9) -----------------------------------------------------------


def _rezip(source: Path, target: Path, extra: list[tuple[str, bytes]],
           first: dict[str, bytes] | None = None) -> None:
    """Copy a zip bundle, writing `first` entries ahead of the originals and `extra` after."""
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name, data in (first or {}).items():
            new.writestr(name, data)
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
        for name, data in extra:
            new.writestr(name, data)


def test_a_zip_with_a_second_events_file_is_refused_by_both_verifiers(capa: Capa) -> None:
    """The copy a reader other than Python's would show first is forged; Python's zipfile reads
    the last one, which is intact. Either way the bundle is ambiguous."""
    import warnings

    capa.nc("Scratched lens")
    bundle = capa.folder / "evidence.zip"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    import zipfile

    with zipfile.ZipFile(bundle) as archive:
        events = archive.read("events.jsonl")
    forged = events.replace(b"Scratched lens", b"Forged title!!")
    twice = capa.folder / "twice.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
        _rezip(bundle, twice, [], first={"events.jsonl": forged})
    by_capa, by_script = verify_both(capa, twice)
    assert by_capa.code == 6, by_capa.stderr
    assert "more than once" in by_capa.stderr and "events.jsonl" in by_capa.stderr
    assert by_script.returncode == 6, by_script.stderr
    assert "more than once" in by_script.stderr


def test_a_zip_with_an_unexpected_entry_is_refused_by_both_verifiers(capa: Capa) -> None:
    capa.nc()
    bundle = capa.folder / "evidence.zip"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    extra = capa.folder / "extra.zip"
    _rezip(bundle, extra, [("README.txt", b"read me first")])
    by_capa, by_script = verify_both(capa, extra)
    assert by_capa.code == 6 and "unexpected entries" in by_capa.stderr
    assert by_script.returncode == 6 and "unexpected entries" in by_script.stderr
    assert verify_both(capa, bundle)[0].code == 0


def test_verify_bundle_without_a_pinned_key_says_it_proved_self_consistency_only(
    capa: Capa
) -> None:
    capa.nc()
    bundle = capa.folder / "evidence.zip"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    unpinned = capa.run("audit", "verify-bundle", str(bundle), user=None)
    assert unpinned.code == 0
    assert "proves only that the bundle is self-consistent" in unpinned.stdout
    assert capa.run("--json", "audit", "verify-bundle", str(bundle),
                    user=None).json()["proved"] == "self-consistency only"
    pub = Path(f"{capa.key}.pub")
    pinned = capa.run("audit", "verify-bundle", str(bundle), "--public-key", str(pub),
                      user=None)
    assert pinned.code == 0 and "self-consistent" not in pinned.stdout
    helptext = capa.run("audit", "verify-bundle", "--help", user=None).stdout
    assert "onlythatthebundleisself-consistent" in "".join(helptext.split())


def test_prove_refuses_when_a_stored_event_no_longer_matches_the_ledger(capa: Capa) -> None:
    """SPEC §9.9: an inclusion proof of the ledger's leaf says nothing of an event that was
    edited in the store afterwards; prove names the event instead (exit 6)."""
    nc = capa.nc()
    assert capa.run("audit", "checkpoint").code == 0
    assert capa.run("audit", "prove", nc).code == 0
    last = query(capa.target, "SELECT MAX(rowid) FROM stored_events")[0][0]
    state = bytes(query(capa.target, "SELECT state FROM stored_events WHERE rowid = ?",
                        last)[0][0])
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          state.replace(b"Cracked housing", b"Cracked h0using", 1), last)
    done = capa.run("--json", "audit", "prove", nc)
    assert done.code == 6 and done.stdout == ""
    error = done.error()
    assert f"position {last} ({nc} version" in error["message"]
    assert "changed" in error["message"]


# -- strict verification (SPEC §9.4) -----------------------------------------------------------


def _log_of(capa: Capa) -> Path:
    if capa.backend == "sqlite":
        return Path(f"{capa.target}.checkpoints")
    return capa.folder / "capa-audit.checkpoints"


def test_init_takes_a_genesis_checkpoint(fresh: Capa) -> None:
    done = fresh.run("--json", "init", "--admin", "mhernandez", "--full-name",
                     "Maria Hernandez", user=None, CAPA_PASSWORD=fresh.password)
    assert done.code == 0, done.stderr
    log = _log_of(fresh)
    assert Path(done.json()["checkpoints"]).resolve() == log.resolve()
    # One signed checkpoint over the store's first events, before anyone else can write.
    notes = CheckpointLog(log).notes()
    assert len(notes) == 1
    assert notes[0].note.splitlines()[1] == str(fresh.events())
    verified = fresh.run("--json", "audit", "verify", user="mhernandez")
    assert verified.code == 0, verified.stderr
    assert verified.json()["checkpoints"] == 1
    assert verified.json()["latest_checkpoint"] == fresh.events()


def test_a_store_rewritten_wholly_after_init_fails_against_the_genesis_checkpoint(
        fresh: Capa) -> None:
    """A store writer rewrites the first event and rebuilds the ledger table to match: never
    checkpointed by hand, the store is still held to the checkpoint capa init took."""
    assert fresh.run("init", "--admin", "mhernandez", "--full-name", "Maria Hernandez",
                     "--org", "Northwind", user=None, CAPA_PASSWORD=fresh.password).code == 0
    state = query(fresh.target, "SELECT state FROM stored_events WHERE rowid = 1")[0][0]
    assert b"Northwind" in state
    query(fresh.target, "UPDATE stored_events SET state = ? WHERE rowid = 1",
          state.replace(b"Northwind", b"Southwind"))
    for table in ("capa_ledger", "capa_ledger_state", "capa_ledger_names"):
        query(fresh.target, f"DELETE FROM {table}")
    done = fresh.run("audit", "verify", user="mhernandez")
    assert done.code == 6, done.stderr
    assert "checkpoint 1 of" in done.stderr and "no longer have the signed root" in done.stderr
    assert "Traceback" not in done.stderr


def test_verify_fails_when_the_checkpoint_log_was_moved_away(capa: Capa) -> None:
    capa.nc()
    assert capa.run("audit", "checkpoint").code == 0
    kept = capa.folder / "kept.checkpoint"
    kept.write_text(capa.run("audit", "checkpoint").stdout)
    moved = capa.folder / "elsewhere.checkpoints"
    _log_of(capa).rename(moved)
    before = capa.events()
    done = capa.run("audit", "verify", user=capa.reporter)
    assert done.code == 6 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "checkpoint log" in done.stderr and "is missing" in done.stderr
    assert "--checkpoints FILE" in done.stderr and "--against FILE" in done.stderr
    assert capa.events() == before
    told = capa.run("--json", "audit", "verify", "--checkpoints", str(moved))
    assert told.code == 0, told.stderr
    assert told.json()["checkpoints"] == 3  # the genesis checkpoint of capa init, and these two
    against = capa.run("--json", "audit", "verify", "--against", str(kept))
    assert against.code == 0, against.stderr
    assert against.json()["kept_checkpoints"][0]["size"] == capa.events()


def test_verify_fails_when_the_store_key_is_missing(capa: Capa) -> None:
    capa.nc()
    assert capa.run("audit", "checkpoint").code == 0
    pub = capa.folder / "trusted.pub"
    Path(f"{capa.key}.pub").rename(pub)
    capa.key.rename(capa.folder / "key-in-the-safe")
    done = capa.run("--json", "audit", "verify")
    assert done.code == 6
    message = done.error()["message"]
    assert "no key was found" in message and "--public-key PEM" in message
    told = capa.run("--json", "audit", "verify", "--public-key", str(pub))
    assert told.code == 0, told.stderr
    assert told.json()["checkpoints"] == 2  # the genesis checkpoint of capa init, and this one


def test_a_postgresql_store_takes_no_key_or_log_from_the_current_folder(fresh: Capa) -> None:
    """The places the audit files had by default (./capa-audit.key, ./capa-audit.checkpoints)
    are no longer looked in: a server store's key and log are configured."""
    if fresh.backend != "postgres":
        pytest.skip("about PostgreSQL stores")
    capa, tmp_path = fresh, fresh.folder
    unplaced = capa.run("init", "--admin", "mhernandez", "--full-name", "Maria Hernandez",
                        user=None, CAPA_KEY=None, CAPA_PASSWORD=capa.password)
    assert unplaced.code == 2 and "CAPA_KEY" in unplaced.stderr
    assert not capa.exists() and list(tmp_path.iterdir()) == []
    made = capa.run("init", "--admin", "mhernandez", "--full-name", "Maria Hernandez",
                    user=None, CAPA_PASSWORD=capa.password)
    assert made.code == 0, made.stderr
    assert (tmp_path / "capa-audit.key").is_file()
    genesis = (tmp_path / "capa-audit.checkpoints").read_text()
    assert len(CheckpointLog(tmp_path / "capa-audit.checkpoints").notes()) == 1
    # The key and log sit in the current folder, but nothing configures them any more.
    checkpoint = capa.run("audit", "checkpoint", user="mhernandez", CAPA_KEY=None)
    assert checkpoint.code == 2 and "CAPA_KEY" in checkpoint.stderr
    assert (tmp_path / "capa-audit.checkpoints").read_text() == genesis
    verify = capa.run("audit", "verify", user="mhernandez", CAPA_KEY=None)
    assert verify.code == 6 and "none is configured" in verify.stderr
    key = capa.folder / "capa-audit.key"
    given = capa.run("audit", "verify", "--key", str(key), user="mhernandez", CAPA_KEY=None)
    assert given.code == 0, given.stderr


def test_a_first_event_rewritten_to_name_no_key_does_not_unbind_the_store(capa: Capa) -> None:
    """The adversary rewrites the store's first event without its key fingerprint, rebuilds
    the ledger and removes the log: the key beside the store still demands a log."""
    capa.nc()
    assert capa.run("audit", "checkpoint").code == 0
    first = bytes(query(capa.target, "SELECT state FROM stored_events WHERE rowid = 1")[0][0])
    fp = json.loads(first)["key_fingerprint"]
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = 1",
          first.replace(f'"{fp}"'.encode(), b"null"))
    for table in ("capa_ledger", "capa_ledger_state", "capa_ledger_names"):
        query(capa.target, f"DELETE FROM {table}")
    _log_of(capa).unlink()
    done = capa.run("audit", "verify")
    assert done.code == 6, done.stderr
    assert "a store key" in done.stderr and "is missing" in done.stderr
