"""The witness on its own (no store): its checks follow tlog-witness add-checkpoint, parallel
cosign attempts never roll it back, and a damaged folder is refused, not trusted."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from capa.audit.merkle import MerkleTree, leaf_hash
from capa.audit.notes import create_checkpoint, sign_checkpoint
from capa.audit.proofs import ConsistencyProof
from capa.audit.vkeys import COSIGNATURE_TYPE, vkey
from capa.audit.witness import cosign, init_witness, read_vkey
from capa.domain.errors import IntegrityFailure, InvalidInput, NotFound

LEAVES = [leaf_hash(f"event {n}".encode()) for n in range(40)]
TREE = MerkleTree(LEAVES)
LOG_KEY = Ed25519PrivateKey.generate()
ORIGIN = "capa/0123456789abcdef"


def note_at(folder: Path, size: int, leaves: list[bytes] = LEAVES) -> Path:
    path = folder / f"cp-{size}-{hashlib.sha256(b''.join(leaves)).hexdigest()[:6]}.txt"
    root = MerkleTree(leaves).root(size)
    path.write_text(sign_checkpoint(create_checkpoint(ORIGIN, size, root), LOG_KEY,
                                    key_name=ORIGIN))
    return path


def proof_between(folder: Path, old: int, new: int, tree: MerkleTree = TREE) -> Path:
    path = folder / f"proof-{old}-{new}.txt"
    path.write_text(ConsistencyProof(old, tree.consistency_proof(old, new)).text())
    return path


@pytest.fixture
def witness(tmp_path: Path) -> Path:
    folder = tmp_path / "witness"
    init_witness("qa.example/w1", folder, vkey(ORIGIN, LOG_KEY))
    return folder


def state(folder: Path) -> dict[str, object]:
    logs = json.loads((folder / "witness.json").read_text())["logs"]
    assert isinstance(logs, dict)
    return logs


def test_cosign_moves_forward_only_along_consistency_proofs(tmp_path: Path,
                                                            witness: Path) -> None:
    assert cosign(note_at(tmp_path, 5), witness, None)["previous_size"] is None
    done = cosign(note_at(tmp_path, 17), witness, proof_between(tmp_path, 5, 17))
    assert (done["previous_size"], done["size"]) == (5, 17)
    # Same size again: no proof hashes, equal roots.
    assert cosign(note_at(tmp_path, 17), witness, proof_between(tmp_path, 17, 17))["size"] == 17
    with pytest.raises(IntegrityFailure, match="rolled back"):
        cosign(note_at(tmp_path, 16), witness, proof_between(tmp_path, 17, 17))
    # A history that differs in one early leaf, with a proof valid for it.
    forked = list(LEAVES)
    forked[2] = leaf_hash(b"rewritten")
    forked_tree = MerkleTree(forked)
    with pytest.raises(IntegrityFailure, match="rewritten"):
        cosign(note_at(tmp_path, 30, forked), witness,
               proof_between(tmp_path, 17, 30, forked_tree))
    assert state(witness)[ORIGIN] == {**state(witness)[ORIGIN], "size": 17}  # type: ignore[dict-item]


def test_a_checkpoint_not_signed_by_the_trusted_key_is_refused(tmp_path: Path,
                                                               witness: Path) -> None:
    other = Ed25519PrivateKey.generate()
    path = tmp_path / "other.txt"
    path.write_text(sign_checkpoint(create_checkpoint(ORIGIN, 5, TREE.root(5)), other))
    with pytest.raises(IntegrityFailure, match="signed by"):
        cosign(path, witness, None)
    # The trusted key signing for another origin is not the log this witness follows.
    path.write_text(sign_checkpoint(create_checkpoint("capa/other", 5, TREE.root(5)), LOG_KEY,
                                    key_name=ORIGIN))
    with pytest.raises(IntegrityFailure, match="cosigns only those of"):
        cosign(path, witness, None)
    assert state(witness) == {}


def test_parallel_cosign_attempts_never_roll_the_witness_back(tmp_path: Path,
                                                              witness: Path) -> None:
    cosign(note_at(tmp_path, 4), witness, None)
    sizes = [10, 20, 30, 40, 12, 25, 33, 38]
    notes = {n: note_at(tmp_path, n) for n in sizes}
    proofs = {n: proof_between(tmp_path, 4, n) for n in sizes}
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(len(sizes))

    def attempt(size: int) -> None:
        barrier.wait()
        try:
            cosign(notes[size], witness, proofs[size])
            outcomes[size] = "cosigned"
        except IntegrityFailure:
            outcomes[size] = "refused"

    threads = [threading.Thread(target=attempt, args=(n,)) for n in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every attempt starts from size 4: the first to take the lock wins, the others no longer
    # match the witness's state and are refused, whatever the order.
    winners = [n for n, outcome in outcomes.items() if outcome == "cosigned"]
    assert len(winners) == 1
    assert state(witness)[ORIGIN]["size"] == winners[0]  # type: ignore[index]


def test_a_refused_cosign_changes_no_file_of_the_witness(tmp_path: Path, witness: Path) -> None:
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in witness.iterdir()}
    assert set(before) == {"witness.key", "witness.json", "witness.lock"}
    assert all(mode & 0o777 == 0o600 for _, mode in before.values())
    cosign(note_at(tmp_path, 5), witness, None)
    with pytest.raises(IntegrityFailure):
        cosign(note_at(tmp_path, 9), witness, proof_between(tmp_path, 4, 9))
    after_first = {p.name: p.read_bytes() for p in witness.iterdir()}
    with pytest.raises(IntegrityFailure):
        cosign(note_at(tmp_path, 3), witness, proof_between(tmp_path, 5, 5))
    assert {p.name: p.read_bytes() for p in witness.iterdir()} == after_first


def test_parallel_cosign_processes_one_wins_the_others_exit_6(tmp_path: Path,
                                                              witness: Path) -> None:
    cosign(note_at(tmp_path, 4), witness, None)
    sizes = [15, 26, 37]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    runs = [subprocess.Popen([sys.executable, "-m", "capa", "audit", "witness", "cosign",
                              str(note_at(tmp_path, n)), "--dir", str(witness), "--proof",
                              str(proof_between(tmp_path, 4, n))], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in sizes]
    done = [(n, run.wait(timeout=120), *run.communicate()) for n, run in zip(sizes, runs,
                                                                            strict=True)]
    assert all("Traceback" not in err for *_, err in done)
    assert sorted(code for _, code, _, _ in done) == [0, 6, 6], done
    (winner,) = [n for n, code, _, _ in done if code == 0]
    assert state(witness)[ORIGIN]["size"] == winner  # type: ignore[index]


def test_a_damaged_or_missing_witness_is_refused(tmp_path: Path, witness: Path) -> None:
    note = note_at(tmp_path, 5)
    with pytest.raises(NotFound):
        cosign(note, tmp_path / "nowhere", None)
    (witness / "witness.key").chmod(0o644)
    with pytest.raises(InvalidInput, match="0600"):
        cosign(note, witness, None)
    (witness / "witness.key").chmod(0o600)
    (witness / "witness.json").write_text("{not json")
    with pytest.raises(InvalidInput):
        cosign(note, witness, None)


@pytest.mark.parametrize("text", ["", "old\n", "old 01\n", "old 5\nAAAA\n",
                                  "old 5\n" + "A" * 43 + "=\nextra\n",
                                  "5\n", "old 5\n" + ("A" * 43 + "=\n") * 64])
def test_malformed_proofs_are_refused_before_anything_is_checked(tmp_path: Path,
                                                                 witness: Path,
                                                                 text: str) -> None:
    proof = tmp_path / "bad.proof"
    proof.write_text(text)
    with pytest.raises(InvalidInput):
        cosign(note_at(tmp_path, 5), witness, proof)
    assert state(witness) == {}


def test_read_vkey_takes_text_or_a_file_and_checks_the_type(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    text = vkey("w", key, COSIGNATURE_TYPE)
    file = tmp_path / "w.vkey"
    file.write_text(text + "\n")
    assert read_vkey(text, COSIGNATURE_TYPE, "--witness").text() == text
    assert read_vkey(str(file), COSIGNATURE_TYPE, "--witness").text() == text
    with pytest.raises(InvalidInput, match="not a witness"):
        read_vkey(vkey("w", key), COSIGNATURE_TYPE, "--witness")
