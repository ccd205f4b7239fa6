"""`capa audit` on the command line: outputs, exit codes, who may run it, and no store or login
needed to verify a bundle."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from capa.cli.main import cli
from tests.support.backends import new_target, query

if TYPE_CHECKING:
    from conftest import Capa


def test_the_audit_commands_exist() -> None:
    audit = cli.get_command(None, "audit")  # type: ignore[arg-type]
    assert audit is not None
    assert sorted(audit.list_commands(None)) == [  # type: ignore[attr-defined]
        "checkpoint", "export", "prove", "verify", "verify-bundle"]


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
