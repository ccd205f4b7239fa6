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

from capa.cli.main import cli
from tests.support.backends import new_target, query

if TYPE_CHECKING:
    from conftest import Capa, Outcome


def test_the_audit_commands_exist() -> None:
    audit = cli.get_command(None, "audit")  # type: ignore[arg-type]
    assert audit is not None
    assert sorted(audit.list_commands(None)) == [  # type: ignore[attr-defined]
        "checkpoint", "consistency", "export", "prove", "verify", "verify-bundle", "vkey",
        "witness"]


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
    assert verified.json()["checkpoints"] == 1
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
