"""Evidence back out (SPEC §10): `capa evidence list` and `capa evidence get` return the exact
bytes kept with a record, digest checked, and `audit verify-bundle --extract` writes a bundle's
files without any name escaping the folder. Tampered bytes in SQLite or PostgreSQL: exit 6,
nothing written."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from capa.audit.bundle_evidence import extract_evidence, safe_name
from capa.audit.errors import TamperDetected
from capa.domain.errors import InvalidInput
from tests.support.backends import query
from tests.support.reading import reading

if TYPE_CHECKING:
    from conftest import Capa

WORK_ORDER = b"%PDF-1.4\nwork order 4471: gate insert replaced\n\x00\x01\xff binary tail\n"
OTHER_ORDER = b"a different work order that happens to have the same file name\n"


def kept(capa: Capa, *files: tuple[str, str, bytes]) -> str:
    """An approved CA whose items A1 (technician) and A2 (owner) were completed with evidence:
    (item, file name, content) each, written in a folder of its own so names may repeat."""
    ref = capa.approved_ca(capa.assessed_nc())
    by_item: dict[str, list[Path]] = {}
    for number, (item, name, content) in enumerate(files):
        folder = capa.folder / f"upload{number}"
        folder.mkdir()
        path = folder / name
        path.write_bytes(content)
        by_item.setdefault(item, []).append(path)
    for item, paths in by_item.items():
        user = capa.technician if item == "A1" else capa.owner
        evidence = [part for p in paths for part in ("--evidence", str(p))]
        capa.write("ca", "complete", ref, item, "--note", "Done", *evidence, user=user)
    return ref


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_list_names_every_file_with_size_digest_who_and_when(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER), ("A2", "photo.jpg", OTHER_ORDER))
    outcome = capa.run("--json", "evidence", "list", ref, user=capa.reporter)
    assert outcome.code == 0, outcome.stderr
    rows = outcome.json()
    assert [(r["name"], r["size"], r["sha256"], r["attached_to"], r["attached_by"])
            for r in rows] == [
        ("work-order.pdf", len(WORK_ORDER), sha(WORK_ORDER), "action A1", capa.technician),
        ("photo.jpg", len(OTHER_ORDER), sha(OTHER_ORDER), "action A2", capa.owner)]
    assert all(r["record"] == ref and r["attached_at"].endswith("Z") for r in rows)
    plain = capa.run("evidence", "list", ref)
    assert plain.code == 0
    # The whole digest is shown: it is what `evidence get` takes.
    assert sha(WORK_ORDER) in plain.stdout and capa.technician in plain.stdout


def test_an_nc_lists_the_evidence_of_its_corrective_actions(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    nc = capa.run("--json", "ca", "show", ref).json()["linked_ncs"][0]
    rows = capa.run("--json", "evidence", "list", nc).json()
    assert [(r["name"], r["record"]) for r in rows] == [("work-order.pdf", ref)]
    assert capa.run("evidence", "list", capa.nc()).stdout == "no evidence files\n"


def test_get_writes_the_exact_bytes_privately_by_name_or_digest(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    by_name, by_digest = capa.folder / "by-name.pdf", capa.folder / "by-digest.pdf"
    outcome = capa.run("--json", "evidence", "get", ref, "work-order.pdf", "--out", str(by_name),
                       user="tokafor")
    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["sha256"] == sha(WORK_ORDER)
    assert outcome.json()["bytes"] == len(WORK_ORDER)
    assert by_name.read_bytes() == WORK_ORDER
    assert stat.S_IMODE(by_name.stat().st_mode) == 0o600
    plain = capa.run("evidence", "get", ref, sha(WORK_ORDER).upper(), "--out", str(by_digest))
    assert plain.code == 0, plain.stderr
    assert by_digest.read_bytes() == WORK_ORDER
    assert "written" in plain.stdout and sha(WORK_ORDER) in plain.stdout


def test_two_files_of_one_name_need_the_digest(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER), ("A2", "work-order.pdf", OTHER_ORDER))
    out = capa.folder / "wanted.pdf"
    error = capa.refused("evidence", "get", ref, "work-order.pdf", "--out", str(out), code=2)
    assert "SHA-256" in error["message"]
    assert sha(WORK_ORDER) in error["message"] and sha(OTHER_ORDER) in error["message"]
    assert not out.exists()
    assert capa.run("evidence", "get", ref, sha(OTHER_ORDER), "--out", str(out)).code == 0
    assert out.read_bytes() == OTHER_ORDER


@pytest.mark.parametrize("wanted", ["no-such-file.pdf", "0" * 64])
def test_an_unknown_file_is_not_found(capa: Capa, wanted: str) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    out = capa.folder / "x.pdf"
    error = capa.refused("evidence", "get", ref, wanted, "--out", str(out), code=3)
    assert "evidence list" in error["message"]
    assert not out.exists()


def test_unknown_and_malformed_records(capa: Capa) -> None:
    capa.refused("evidence", "list", f"CA-{capa.year}-0999", code=3)
    capa.refused("evidence", "list", "not-a-record", code=2)
    capa.refused("evidence", "get", f"CA-{capa.year}-0999", "x", "--out",
                 str(capa.folder / "x"), code=3)
    assert not (capa.folder / "x").exists()


def test_out_follows_the_house_rules(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    victim = capa.folder / "victim.txt"
    victim.write_text("keep me")
    link = capa.folder / "link.pdf"
    link.symlink_to(victim)
    error = capa.refused("evidence", "get", ref, "work-order.pdf", "--out", str(link), code=2)
    assert "symbolic link" in error["message"]
    assert victim.read_text() == "keep me"
    capa.refused("evidence", "get", ref, "work-order.pdf", "--out",
                 str(capa.folder / "missing" / "x.pdf"), code=2)
    if os.geteuid() != 0:  # root writes anywhere; the folder test means nothing then
        locked = capa.folder / "locked"
        locked.mkdir(mode=0o500)
        capa.refused("evidence", "get", ref, "work-order.pdf", "--out", str(locked / "x.pdf"),
                     code=2)


def test_tampered_stored_bytes_are_refused_with_exit_6(capa: Capa) -> None:
    """The adversary with database access rewrites the kept file (same length, so only the
    digest can tell) in SQLite or PostgreSQL directly: nothing is written."""
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    rows = query(capa.target, "SELECT rowid, state FROM stored_events WHERE topic LIKE ?",
                 "%EvidenceStored")
    assert len(rows) == 1
    rowid, state = rows[0]
    forged = base64.b64encode(WORK_ORDER.replace(b"4471", b"9999")).decode()
    changed = re.sub(rb'"content_b64":"[^"]*"', f'"content_b64":"{forged}"'.encode(),
                     bytes(state))
    assert changed != bytes(state)
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?", changed, rowid)
    out = capa.folder / "copy.pdf"
    for wanted in ("work-order.pdf", sha(WORK_ORDER)):
        error = capa.refused("evidence", "get", ref, wanted, "--out", str(out), code=6)
        assert "SHA-256" in error["message"] and "nothing was written" in error["message"]
        assert not out.exists()
    # Bytes that are not even base64 any more: still exit 6, never a traceback.
    broken = re.sub(rb'"content_b64":"[^"]*"', b'"content_b64":"%%%"', bytes(state))
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?", broken, rowid)
    capa.refused("evidence", "get", ref, "work-order.pdf", "--out", str(out), code=6)
    assert not out.exists()


def test_hostile_names_are_shown_escaped(capa: Capa) -> None:
    name = "\u202eredro-krow\x1b]0;pwned\x07.pdf"
    ref = kept(capa, ("A1", name, WORK_ORDER))
    plain = capa.run("evidence", "list", ref)
    assert plain.code == 0
    assert "\x1b" not in plain.stdout and "\u202e" not in plain.stdout
    assert "\\u202e" in plain.stdout and "\\x1b]0;pwned\\x07" in plain.stdout
    assert capa.run("--json", "evidence", "list", ref).json()[0]["name"] == name
    out = capa.folder / "got.pdf"
    assert capa.run("evidence", "get", ref, name, "--out", str(out)).code == 0
    assert out.read_bytes() == WORK_ORDER


# -- out of a bundle --------------------------------------------------------------------------


def test_verify_bundle_extracts_the_exact_files(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER), ("A2", "work-order.pdf", OTHER_ORDER),
               ("A2", "..hidden.txt", b"dots"))
    assert ref
    bundle = capa.folder / "bundle.zip"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    folder = capa.folder / "extracted"
    outcome = capa.run("--json", "audit", "verify-bundle", str(bundle), "--extract", str(folder),
                       user=None)
    assert outcome.code == 0, outcome.stderr
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert files == {f"{sha(WORK_ORDER)[:12]}-work-order.pdf": WORK_ORDER,
                     f"{sha(OTHER_ORDER)[:12]}-work-order.pdf": OTHER_ORDER,
                     "hidden.txt": b"dots"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert {e["name"] for e in outcome.json()["extracted"]} == {"work-order.pdf",
                                                                 "..hidden.txt"}
    again = capa.run("audit", "verify-bundle", str(bundle), "--extract", str(folder), user=None)
    assert again.code == 2 and "not an empty folder" in again.stderr


@pytest.mark.sqlite_only("a hand-made bundle: no store is involved")
def test_hostile_names_in_a_bundle_never_leave_the_folder(tmp_path: Path, backend: str) -> None:
    """A bundle is input from elsewhere: whatever names its events carry, every file lands
    directly inside the folder."""
    assert backend == "sqlite"
    hostile = ["../escaped.txt", "/tmp/absolute.txt", "a\x00b.txt", "..", ".", "",
               "sub/dir/../../x.txt", "\\..\\win.txt", "\u202etxt.exe", "x" * 600]
    lines: list[str] = []
    for position, name in enumerate(hostile, start=1):
        content = f"content of {name!r}".encode()
        digest = sha(content)
        stored = {"ref": f"EVIDENCE-{digest}", "sha256": digest, "size": len(content),
                  "content_b64": base64.b64encode(content).decode()}
        naming = {"number": "A1", "note": "n", "evidence": [{"name": name, "sha256": digest,
                                                               "size": len(content)}]}
        for topic, state in (("capa.domain.store:EvidenceFile.EvidenceStored", stored),
                             ("capa.domain.corrective_action:CorrectiveAction."
                              "ActionItemCompleted", naming)):
            lines.append(json.dumps({"position": len(lines) + 1, "record_id": f"r{position}",
                                     "version": 1, "event_type": topic, "state_b64":
                                     base64.b64encode(json.dumps(state).encode()).decode()}))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "events.jsonl").write_text("\n".join(lines) + "\n")
    folder = tmp_path / "out"
    written = extract_evidence(bundle, folder)
    assert len(written) == len(hostile)
    inside = list(folder.iterdir())
    assert len(inside) == len(hostile)
    for path in inside:
        assert path.parent == folder and path.is_file() and not path.is_symlink()
        assert "\x00" not in path.name and "\u202e" not in path.name
        assert not path.name.startswith(".")
        assert len(path.name.encode()) <= 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "out"]
    assert not Path("/tmp/absolute.txt").exists() or \
        Path("/tmp/absolute.txt").read_bytes() != b"content of '/tmp/absolute.txt'"
    assert safe_name("../x", "d") == "_x" and safe_name("..", "d" * 64) == "d" * 64


@pytest.mark.sqlite_only("a hand-made bundle: no store is involved")
def test_a_bundle_file_that_does_not_match_its_digest_extracts_nothing(
        tmp_path: Path, backend: str) -> None:
    assert backend == "sqlite"
    good, bad = b"good", b"bad"
    lines: list[str] = []
    for position, (content, claimed) in enumerate([(good, good), (bad, b"claimed")], start=1):
        state = {"ref": f"EVIDENCE-{sha(claimed)}", "sha256": sha(claimed),
                 "size": len(content), "content_b64": base64.b64encode(content).decode()}
        lines.append(json.dumps({"position": position, "record_id": f"r{position}",
                                 "version": 1,
                                 "event_type": "capa.domain.store:EvidenceFile.EvidenceStored",
                                 "state_b64": base64.b64encode(
                                     json.dumps(state).encode()).decode()}))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "events.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TamperDetected):
        extract_evidence(bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (bundle / "events.jsonl").write_text(lines[0] + "\n")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInput):
        extract_evidence(bundle, link)
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.sqlite_only("the golden store of the first release is a SQLite file")
def test_evidence_of_a_store_written_by_the_first_release_comes_out(
        tmp_path: Path, backend: str) -> None:
    import shutil

    from capa.app.store import open_store

    assert backend == "sqlite"
    golden = Path(__file__).resolve().parents[1] / "golden" / "golden-v1.db"
    copy = tmp_path / "golden.db"
    shutil.copyfile(golden, copy)
    facts = json.loads(golden.with_suffix(".json").read_text())
    app = open_store(str(copy))
    try:
        with reading(app):
            found = [e for r in facts["records"] if r["kind"] == "CorrectiveAction"
                     for e in app.evidence.evidence_list(r["id"])]
        assert found, "the golden store keeps an evidence file"
        for entry in found:
            with reading(app):
                chosen, content = app.evidence.evidence_file(entry["record"], entry["sha256"])
            assert chosen["name"] == entry["name"]
            assert sha(content) == entry["sha256"] and len(content) == entry["size"]
    finally:
        app.close()


def test_an_auditor_takes_evidence_out_and_changes_nothing(capa: Capa) -> None:
    ref = kept(capa, ("A1", "work-order.pdf", WORK_ORDER))
    added = capa.run("user", "add", "dbrooks", "--full-name", "Dana Brooks", "--role", "auditor",
                     CAPA_NEW_PASSWORD=capa.password)
    assert added.code == 0, added.stderr
    before = capa.events()
    out = capa.folder / "audited.pdf"
    outcome = capa.run("evidence", "get", ref, "work-order.pdf", "--out", str(out),
                       user="dbrooks")
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes() == WORK_ORDER
    assert capa.run("evidence", "list", ref, user="dbrooks").code == 0
    assert capa.events() == before


def test_evidence_kept_with_a_verification_is_listed_with_its_signer(capa: Capa) -> None:
    ref = capa.implemented_ca(capa.assessed_nc())
    report = capa.folder / "three-lots.csv"
    report.write_bytes(b"lot,cracks\nL2401,0\nL2402,0\nL2403,0\n")
    capa.write("ca", "verify", ref, "--effective", "--note", "No cracks in 3 lots",
               "--evidence", str(report), user=capa.verifier)
    rows = capa.run("--json", "evidence", "list", ref).json()
    assert [(r["name"], r["attached_to"], r["attached_by"]) for r in rows] == [
        ("three-lots.csv", "verification 1", capa.verifier)]
    out = capa.folder / "copy.csv"
    assert capa.run("evidence", "get", ref, "three-lots.csv", "--out", str(out)).code == 0
    assert out.read_bytes() == report.read_bytes()
