"""C2SP interoperability and witnesses on the command line (SPEC §9.7, §9.8): the store's vkey,
foreign checkpoint lines, tlog-proof and consistency proofs checked by code that is not capa's
(pymerkle for the tree, hand-written RFC 9162 verification), and a witness that refuses to
cosign a rewritten history. Runs on SQLite and PostgreSQL; the adversary edits the tables."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from tests.support.backends import event_rows, query

if TYPE_CHECKING:
    from conftest import Capa, Outcome


# -- independent verification (RFC 9162 §2.1.3.2, §2.1.4.2; no capa code) ----------------------


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_audit_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    fn, sn, r = index, size - 1, leaf
    for p in path:
        assert sn != 0
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


def consistent(size1: int, size2: int, path: list[bytes], root1: bytes, root2: bytes) -> bool:
    if size1 == size2:
        return not path and root1 == root2
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


def pymerkle_tree(capa: Capa) -> InmemoryTree:
    """The RFC 6962 tree of the stored events, built by pymerkle from the documented leaves."""
    tree = InmemoryTree(algorithm="sha256")
    for position, record, version, topic, state in event_rows(capa.target):
        tree.append_entry(f"capa-leaf-v1\n{position}\n{record.hex}\n{version}\n{topic}\n"
                          .encode() + state)
    return tree


def note_parts(note: str) -> tuple[list[str], list[tuple[str, bytes]]]:
    text, signatures = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2:]
    return text.splitlines(), [(line.split(" ")[1], base64.b64decode(line.split(" ")[2]))
                               for line in signatures.splitlines()]


def store_public_key(capa: Capa) -> Ed25519PublicKey:
    key = load_pem_public_key(Path(f"{capa.key}.pub").read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    return key


def checkpoint(capa: Capa, name: str) -> Path:
    done = capa.run("audit", "checkpoint")
    assert done.code == 0, done.stderr
    path = capa.folder / name
    path.write_text(done.stdout)
    return path


def more_events(capa: Capa, count: int = 2) -> None:
    for n in range(count):
        capa.nc(f"Later finding {n}")


def refused(capa: Capa, *args: str, code: int, user: str | None = None,
            untouched: tuple[Path, ...] = ()) -> Outcome:
    """A refusal: the exit code, one line on stderr, nothing on stdout, nothing written."""
    before_files = {p: p.read_bytes() if p.is_file() else None for p in untouched}
    before_log = sorted(p.name for p in capa.folder.iterdir())
    before = capa.events()
    done = capa.run(*args, user=user)
    assert done.code == code, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert capa.events() == before
    assert sorted(p.name for p in capa.folder.iterdir()) == before_log
    for path, data in before_files.items():
        assert (path.read_bytes() if path.is_file() else None) == data, path
    return done


# -- vkey --------------------------------------------------------------------------------------


def test_vkey_is_the_store_key_in_signed_note_form_and_verifies_checkpoints(capa: Capa) -> None:
    note = checkpoint(capa, "cp.txt").read_text()
    done = capa.run("audit", "vkey", user=None)
    assert done.code == 0, done.stderr
    text = done.stdout.strip()
    name, kid, material = text.split("+", 2)
    blob = base64.b64decode(material)
    raw = store_public_key(capa).public_bytes_raw()
    assert blob == b"\x01" + raw
    assert bytes.fromhex(kid) == hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    # A signed-note verifier needs nothing but the vkey: name and key id pick the line.
    lines, signatures = note_parts(note)
    assert lines[0] == name  # the key name is the origin, as tlog-checkpoint recommends
    (signature,) = [s for n, s in signatures if n == name and s[:4] == bytes.fromhex(kid)]
    Ed25519PublicKey.from_public_bytes(blob[1:]).verify(
        signature[4:], note[: note.rindex("\n\n") + 1].encode())
    as_json = capa.run("--json", "audit", "vkey", user=None).json()
    assert as_json["vkey"] == text and as_json["name"] == name


def test_vkey_refusals(capa: Capa) -> None:
    not_a_key = capa.folder / "not-a-key.pem"
    not_a_key.write_text("hello\n")
    refused(capa, "audit", "vkey", "--public-key", str(not_a_key), code=2)
    refused(capa, "audit", "vkey", "--key", str(capa.folder / "absent.key"), code=3)


# -- reading any valid checkpoint --------------------------------------------------------------


def _sign_with_store_key(capa: Capa, body: str) -> str:
    key = load_pem_private_key(capa.key.read_bytes(), None)
    origin = body.split("\n", 1)[0]
    signature = key.sign(body.encode())  # type: ignore[union-attr, call-arg]
    raw = store_public_key(capa).public_bytes_raw()
    kid = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
    return f"{body}\n— {origin} {base64.b64encode(kid + signature).decode()}\n"


def test_checkpoints_with_extension_lines_and_foreign_signatures_are_accepted(
        capa: Capa) -> None:
    kept = checkpoint(capa, "kept.txt")
    lines, _ = note_parts(kept.read_text())
    # Lines a cosigner or another key would add: ignored, in the log and in a kept file.
    unknown = "— witness.example/w1 " + base64.b64encode(bytes(76)).decode() + "\n"
    other_key = "— " + lines[0] + " " + base64.b64encode(b"\xff" * 68).decode() + "\n"
    log = Path(f"{capa.target}.checkpoints") if capa.backend == "sqlite" else \
        capa.folder / "capa-audit.checkpoints"
    log.write_text(log.read_text().rstrip("\n") + "\n" + unknown + other_key + "\n")
    kept.write_text(kept.read_text() + unknown + other_key)
    # A checkpoint written by other C2SP tooling with the store key: three lines, no time line,
    # an extension line of its own.
    foreign = capa.folder / "foreign.txt"
    foreign.write_text(_sign_with_store_key(
        capa, "\n".join(lines[:3]) + "\nexample.com/ext opaque value\n"))
    done = capa.run("--json", "audit", "verify", "--against", str(kept), "--against",
                    str(foreign))
    assert done.code == 0, done.stderr
    assert [k["time"] for k in done.json()["kept_checkpoints"]] == [lines[3][5:], None]
    bundle = capa.folder / "bundle"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    (bundle / "checkpoint.txt").write_text((bundle / "checkpoint.txt").read_text() + unknown)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["sha256"]["checkpoint.txt"] = hashlib.sha256(
        (bundle / "checkpoint.txt").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    verified = capa.run("audit", "verify-bundle", str(bundle), "--checkpoint", str(foreign),
                        user=None)
    assert verified.code == 0, verified.stderr
    script = subprocess.run([sys.executable, "-I", str(capa.root / "scripts" / "verify_bundle.py"),
                             str(bundle), "--checkpoint", str(foreign)],
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr


@pytest.mark.parametrize("edit", ["two lines", "empty line", "bad claimed signature",
                                  "not a note"])
def test_malformed_kept_checkpoints_are_refused(capa: Capa, edit: str) -> None:
    kept = checkpoint(capa, "kept.txt")
    text = kept.read_text()
    lines, _ = note_parts(text)
    if edit == "two lines":
        text = _sign_with_store_key(capa, "\n".join(lines[:2]) + "\n")
    elif edit == "empty line":
        text = _sign_with_store_key(capa, "\n".join(lines[:3]) + "\n\nafter a gap\n")
    elif edit == "bad claimed signature":
        # Same name and key id as the store key, and a signature that does not verify.
        good = text.rstrip("\n").rsplit("\n", 1)[1]
        blob = bytearray(base64.b64decode(good.rsplit(" ", 1)[1]))
        blob[-1] ^= 1
        text += f"{good.rsplit(' ', 1)[0]} {base64.b64encode(bytes(blob)).decode()}\n"
    else:
        text = "just some text\n"
    kept.write_text(text)
    refused(capa, "audit", "verify", "--against", str(kept), code=6, user=capa.quality_manager)


# -- tlog-proof --------------------------------------------------------------------------------


def test_prove_format_c2sp_is_a_tlog_proof_checked_independently(capa: Capa) -> None:
    nc = capa.nc()
    capa.write("nc", "amend", nc, "--field", "severity", "--value", "critical", "--reason",
               "Patient contact", user=capa.quality_engineer)
    more_events(capa, 3)
    note = checkpoint(capa, "cp.txt").read_text()
    done = capa.run("audit", "prove", nc, "--format", "c2sp")
    assert done.code == 0, done.stderr
    proofs = ("\n" + done.stdout).split("\nc2sp.org/tlog-proof@v1\n")[1:]
    assert len(proofs) == 2
    tree = pymerkle_tree(capa)
    rows = {(r[1].hex, r[2]): r[0] for r in event_rows(capa.target)}
    for version, proof in enumerate(proofs, start=1):
        head, checkpoint_text = proof.split("\n\n", 1)
        assert checkpoint_text.rstrip("\n") == note.rstrip("\n")
        index_line, *hashes = head.split("\n")
        index = int(index_line.removeprefix("index "))
        lines, _ = note_parts(checkpoint_text)
        size, root = int(lines[1]), base64.b64decode(lines[2])
        assert root == tree.get_root(size)  # pymerkle agrees on the signed root
        from capa.domain.record import record_uuid

        assert index == rows[(record_uuid(nc).hex, version)] - 1
        leaf = tree.get_leaf(index + 1)  # pymerkle counts leaves from 1
        assert root_from_audit_path(index, size, leaf, [base64.b64decode(h) for h in hashes]) \
            == root
    single = capa.run("audit", "prove", nc, "--format", "c2sp", "--version", "2")
    assert single.code == 0
    assert single.stdout.count("c2sp.org/tlog-proof@v1") == 1
    assert single.stdout.strip() == ("c2sp.org/tlog-proof@v1\n" + proofs[1]).strip()


def test_prove_format_c2sp_refusals(capa: Capa) -> None:
    nc = capa.nc()
    refused(capa, "audit", "prove", nc, "--format", "c2sp", code=3, user=capa.quality_manager)
    checkpoint(capa, "cp.txt")
    refused(capa, "audit", "prove", nc, "--format", "c2sp", "--version", "9", code=3,
            user=capa.quality_manager)
    refused(capa, "audit", "prove", nc, "--format", "xml", code=2, user=capa.quality_manager)
    refused(capa, "audit", "prove", nc, "--version", "0", code=2, user=capa.quality_manager)


# -- consistency -------------------------------------------------------------------------------


def parse_consistency(text: str) -> tuple[int, list[bytes]]:
    first, *hashes = text.strip("\n").split("\n")
    assert first.startswith("old ")
    return int(first[4:]), [base64.b64decode(h) for h in hashes]


def test_consistency_proofs_are_checked_independently(capa: Capa) -> None:
    capa.nc()
    first = checkpoint(capa, "first.txt")
    more_events(capa, 3)
    second = checkpoint(capa, "second.txt")
    more_events(capa, 2)
    third = checkpoint(capa, "third.txt")
    tree = pymerkle_tree(capa)
    sizes = [int(note_parts(p.read_text())[0][1]) for p in (first, second, third)]
    for (a, pa), (b, pb) in [((sizes[0], first), (sizes[1], second)),
                             ((sizes[0], first), (sizes[2], third)),
                             ((sizes[1], second), (sizes[2], third)),
                             ((sizes[1], second), (sizes[1], second))]:
        done = capa.run("audit", "consistency", "--from", str(pa), "--to", str(pb))
        assert done.code == 0, done.stderr
        old, path = parse_consistency(done.stdout)
        assert old == a
        assert consistent(a, b, path, tree.get_root(a), tree.get_root(b))
        assert not consistent(a, b, path, tree.get_root(a - 1), tree.get_root(b)) or a == 1
    # --to defaults to the latest checkpoint of the log.
    latest = capa.run("--json", "audit", "consistency", "--from", str(first))
    assert latest.code == 0
    assert (latest.json()["old_size"], latest.json()["new_size"]) == (sizes[0], sizes[2])


def test_consistency_refusals(capa: Capa) -> None:
    capa.nc()
    first = checkpoint(capa, "first.txt")
    more_events(capa, 1)
    second = checkpoint(capa, "second.txt")
    me = capa.quality_manager
    refused(capa, "audit", "consistency", "--from", str(second), "--to", str(first), code=2,
            user=me)
    refused(capa, "audit", "consistency", "--to", str(first), code=2, user=me)
    refused(capa, "audit", "consistency", "--from", str(capa.folder / "absent"), code=2, user=me)
    forged = capa.folder / "forged.txt"
    size = note_parts(first.read_text())[0][1]
    forged.write_text(first.read_text().replace(f"\n{size}\n", f"\n{int(size) - 1}\n", 1))
    refused(capa, "audit", "consistency", "--from", str(forged), code=6, user=me)
    # A rewritten early event, with the ledger rebuilt to match: the proof cannot be made
    # to lead to both signed roots, so nothing is printed.
    _rewrite_history(capa)
    refused(capa, "audit", "consistency", "--from", str(first), "--to", str(second), code=6,
            user=me)


def _log(capa: Capa) -> Path:
    return Path(f"{capa.target}.checkpoints") if capa.backend == "sqlite" else \
        capa.folder / "capa-audit.checkpoints"


def _rewrite_history(capa: Capa) -> None:
    """What a holder of the store key and the database does: change an early event, drop the
    ledger so that it is rebuilt from the changed events, and re-sign a fresh checkpoint log."""
    position, state = next((row[0], row[4]) for row in event_rows(capa.target)
                           if b"Cracked housing" in row[4])
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?",
          state.replace(b"Cracked housing", b"Scratched cover"), position)
    for table in ("capa_ledger", "capa_ledger_state", "capa_ledger_names"):
        query(capa.target, f"DROP TABLE IF EXISTS {table}")
    _log(capa).unlink()


# -- witnesses ---------------------------------------------------------------------------------


def witness_init(capa: Capa, folder: Path, name: str = "qa-head.example/w1") -> str:
    done = capa.run("audit", "witness", "init", "--name", name, "--dir", str(folder), user=None)
    assert done.code == 0, done.stderr
    return done.stdout.strip()


def cosign(capa: Capa, note: Path, folder: Path, proof: Path | None = None) -> Path:
    args = ["audit", "witness", "cosign", str(note), "--dir", str(folder)]
    if proof is not None:
        args += ["--proof", str(proof)]
    done = capa.run(*args, user=None)
    assert done.code == 0, done.stderr
    out = note.with_suffix(".cosigned")
    out.write_text(done.stdout)
    return out


def consistency(capa: Capa, older: Path, newer: Path, name: str) -> Path:
    done = capa.run("audit", "consistency", "--from", str(older), "--to", str(newer))
    assert done.code == 0, done.stderr
    path = capa.folder / name
    path.write_text(done.stdout)
    return path


def test_witness_init_makes_private_files_and_a_cosignature_vkey(capa: Capa) -> None:
    folder = capa.folder / "witness"
    text = witness_init(capa, folder)
    name, kid, material = text.split("+", 2)
    blob = base64.b64decode(material)
    assert name == "qa-head.example/w1" and blob[0] == 4
    assert bytes.fromhex(kid) == hashlib.sha256(name.encode() + b"\n\x04" + blob[1:]).digest()[:4]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    key = load_pem_private_key((folder / "witness.key").read_bytes(), None)
    assert key.public_key().public_bytes_raw() == blob[1:]  # type: ignore[union-attr]
    # A witness is never replaced; a bad name or vkey leaves no folder behind.
    refused(capa, "audit", "witness", "init", "--name", "other", "--dir", str(folder), code=2,
            untouched=(folder / "witness.key", folder / "witness.json"))
    refused(capa, "audit", "witness", "init", "--name", "bad name", "--dir",
            str(capa.folder / "w2"), code=2)
    refused(capa, "audit", "witness", "init", "--name", "a+b", "--dir",
            str(capa.folder / "w2"), code=2)
    refused(capa, "audit", "witness", "init", "--name", "w", "--dir", str(capa.folder / "w2"),
            "--log-vkey", "not+a+vkey", code=2)
    refused(capa, "audit", "witness", "init", "--name", "w", "--dir",
            str(capa.folder / "missing" / "w2"), code=3)


def test_a_witness_cosigns_an_append_only_history_and_verify_requires_it(capa: Capa) -> None:
    capa.nc()
    folder = capa.folder / "witness"
    store_vkey = capa.run("audit", "vkey", user=None).stdout.strip()
    done = capa.run("audit", "witness", "init", "--name", "qa-head.example/w1", "--dir",
                    str(folder), "--log-vkey", store_vkey, user=None)
    assert done.code == 0, done.stderr
    witness = done.stdout.strip()
    first = checkpoint(capa, "first.txt")
    cosigned_first = cosign(capa, first, folder)  # the first needs no proof
    assert cosigned_first.read_text().startswith(first.read_text())
    # The cosignature is C2SP tlog-cosignature/v1, checked here by hand.
    lines, signatures = note_parts(cosigned_first.read_text())
    (blob,) = [s for n, s in signatures if n == "qa-head.example/w1"]
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    text = cosigned_first.read_text()
    Ed25519PublicKey.from_public_bytes(base64.b64decode(witness.split("+", 2)[2])[1:]).verify(
        blob[12:], f"cosignature/v1\ntime {timestamp}\n".encode()
        + text[: text.rindex("\n\n") + 1].encode())

    more_events(capa, 3)
    second = checkpoint(capa, "second.txt")
    state = folder / "witness.json"
    refused(capa, "audit", "witness", "cosign", str(second), "--dir", str(folder), code=2,
            untouched=(state,))  # no proof
    wrong = capa.folder / "wrong.proof"
    wrong.write_text("old 1\n")
    refused(capa, "audit", "witness", "cosign", str(second), "--dir", str(folder), "--proof",
            str(wrong), code=6, untouched=(state,))
    proof = consistency(capa, first, second, "first-second.proof")
    cosigned_second = cosign(capa, second, folder, proof)
    assert json.loads(state.read_text())["logs"][lines[0]]["size"] == int(
        note_parts(second.read_text())[0][1])
    # An old checkpoint is a rollback once a later one was cosigned.
    refused(capa, "audit", "witness", "cosign", str(first), "--dir", str(folder), "--proof",
            str(proof), code=6, untouched=(state,))

    me = capa.quality_manager
    ok = capa.run("--json", "audit", "verify", "--against", str(cosigned_second), "--witness",
                  witness)
    assert ok.code == 0, ok.stderr
    assert ok.json()["witnesses"][0]["size"] == int(note_parts(second.read_text())[0][1])
    size = note_parts(second.read_text())[0][1]
    human = capa.run("audit", "verify", "--against", str(cosigned_second), "--witness", witness)
    assert human.stdout.splitlines()[0].endswith(
        f"; cosigned by qa-head.example/w1 up to {size} events")
    vkey_file = capa.folder / "witness.vkey"
    vkey_file.write_text(witness + "\n")
    assert capa.run("audit", "verify", "--against", str(cosigned_first), "--witness",
                    str(vkey_file)).code == 0
    # Without a cosigned checkpoint among those checked, the witness's word is missing.
    refused(capa, "audit", "verify", "--witness", witness, code=6, user=me)
    refused(capa, "audit", "verify", "--against", str(second), "--witness", witness, code=6,
            user=me)
    refused(capa, "audit", "verify", "--witness", store_vkey, code=2, user=me)
    refused(capa, "audit", "verify", "--witness", "garbage", code=2, user=me)

    bundle = capa.folder / "bundle"
    assert capa.run("audit", "export", "--out", str(bundle)).code == 0
    checked = capa.run("audit", "verify-bundle", str(bundle), "--vkey", store_vkey,
                       "--checkpoint", str(cosigned_second), "--witness", witness, user=None)
    assert checked.code == 0, checked.stderr
    assert checked.stdout.splitlines()[0].endswith(
        f", cosigned by qa-head.example/w1 up to {size} events")
    # The standalone verifier reaches the same verdicts with its own code.
    script = [sys.executable, "-I", str(capa.root / "scripts" / "verify_bundle.py"), str(bundle)]
    for extra, code in [(["--vkey", store_vkey, "--checkpoint", str(cosigned_second),
                          "--witness", witness], 0),
                        (["--witness", witness], 6),
                        (["--vkey", other_store_vkey(), "--checkpoint", str(cosigned_second)], 6),
                        (["--witness", store_vkey], 2),
                        (["--vkey", "garbage"], 2)]:
        ran = subprocess.run([*script, *extra], capture_output=True, text=True, timeout=60)
        assert ran.returncode == code, (extra, ran.stdout, ran.stderr)
        assert "Traceback" not in ran.stderr
        if code == 0:
            assert f", cosigned by qa-head.example/w1 up to {size} events; signatures:" \
                in ran.stdout
    refused(capa, "audit", "verify-bundle", str(bundle), "--witness", witness, code=6)
    refused(capa, "audit", "verify-bundle", str(bundle), "--vkey", other_store_vkey(), code=6)
    refused(capa, "audit", "verify-bundle", str(bundle), "--vkey", witness, code=2)
    other = capa.folder / "other-witness"
    refused(capa, "audit", "verify-bundle", str(bundle), "--vkey",
            witness_init(capa, other, "other.example/w"), code=2)
    foreign_store = "capa/0000+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode()
    refused(capa, "audit", "verify-bundle", str(bundle), "--vkey", foreign_store, code=2)


def other_store_vkey() -> str:
    """The vkey of some other store's key."""
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    kid = hashlib.sha256(b"capa/other\n\x01" + raw).digest()[:4].hex()
    return f"capa/other+{kid}+" + base64.b64encode(b"\x01" + raw).decode()


def test_a_rewritten_history_re_signed_with_the_store_key_is_refused_by_the_witness(
        capa: Capa) -> None:
    capa.nc()
    folder = capa.folder / "witness"
    witness = witness_init(capa, folder)
    first = checkpoint(capa, "first.txt")
    cosigned = cosign(capa, first, folder)
    state = folder / "witness.json"
    # The key holder rewrites an early event, rebuilds the ledger, re-signs a checkpoint at
    # the same size, then grows the log and makes a proof that is valid for the new history.
    _rewrite_history(capa)
    forged_first = checkpoint(capa, "forged-first.txt")
    assert forged_first.read_text() != first.read_text()
    more_events(capa, 2)
    forged_second = checkpoint(capa, "forged-second.txt")
    proof = consistency(capa, forged_first, forged_second, "forged.proof")
    assert capa.run("audit", "verify").code == 0  # consistent in itself
    for note in (forged_first, forged_second):
        done = refused(capa, "audit", "witness", "cosign", str(note), "--dir", str(folder),
                       "--proof", str(proof) if note == forged_second else str(
                           _empty_proof(capa, forged_first)), code=6, untouched=(state,))
        assert "rewritten" in done.stderr
    # verify --witness: the cosigned checkpoint no longer matches the store; a forged one
    # carrying the copied cosignature line does not verify; one without it is not cosigned.
    me = capa.quality_manager
    refused(capa, "audit", "verify", "--against", str(cosigned), "--witness", witness, code=6,
            user=me)
    copied = capa.folder / "copied.txt"
    copied.write_text(forged_second.read_text()
                      + cosigned.read_text().rstrip("\n").rsplit("\n", 1)[1] + "\n")
    done = refused(capa, "audit", "verify", "--against", str(copied), "--witness", witness,
                   code=6, user=me)
    assert "cosignature" in done.stderr
    refused(capa, "audit", "verify", "--against", str(forged_second), "--witness", witness,
            code=6, user=me)


def _empty_proof(capa: Capa, note: Path) -> Path:
    path = capa.folder / "same-size.proof"
    path.write_text(f"old {note_parts(note.read_text())[0][1]}\n")
    return path


def test_witness_cosign_refuses_bad_input_and_writes_nothing(capa: Capa) -> None:
    capa.nc()
    folder = capa.folder / "witness"
    witness_init(capa, folder)
    first = checkpoint(capa, "first.txt")
    state = folder / "witness.json"
    keep = (state, folder / "witness.key")
    garbage = capa.folder / "garbage.txt"
    garbage.write_text("not a checkpoint\n")
    bad_proof = capa.folder / "bad.proof"
    bad_proof.write_text("old 0\nnot-base64!\n")
    refused(capa, "audit", "witness", "cosign", str(garbage), "--dir", str(folder), code=2,
            untouched=keep)
    refused(capa, "audit", "witness", "cosign", str(first), "--dir", str(folder), "--proof",
            str(bad_proof), code=2, untouched=keep)
    refused(capa, "audit", "witness", "cosign", str(first), "--dir", str(capa.folder / "none"),
            code=3, untouched=keep)
    refused(capa, "audit", "witness", "cosign", str(capa.folder / "absent.txt"), "--dir",
            str(folder), code=2, untouched=keep)
    # A witness that trusts one store key refuses checkpoints of any other.
    strict = capa.folder / "strict"
    other_key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    kid = hashlib.sha256(b"capa/x\n\x01" + other_key).digest()[:4].hex()
    other = f"capa/x+{kid}+" + base64.b64encode(b"\x01" + other_key).decode()
    assert capa.run("audit", "witness", "init", "--name", "w", "--dir", str(strict),
                    "--log-vkey", other, user=None).code == 0
    refused(capa, "audit", "witness", "cosign", str(first), "--dir", str(strict), code=6,
            untouched=(strict / "witness.json",))
