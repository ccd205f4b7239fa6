"""A witness: cosigns a store's checkpoints only while its history stays append-only (§9.8).

A witness is a folder an auditor or QA head keeps on their own machine:

- ``witness.key``: the witness's Ed25519 key (PEM, mode 0600);
- ``witness.json``: its name, optionally the store vkey it trusts, and for each log (origin) the
  size and root of the last checkpoint it cosigned (mode 0600, replaced atomically);
- ``witness.lock``: held while a checkpoint is checked and the state moved on.

``cosign`` follows the checks of C2SP tlog-witness ``add-checkpoint``: the checkpoint must be
signed by the trusted store key (when one was given), the proof's old size must be the size the
witness last cosigned, and the RFC 6962 consistency proof must lead from that root to the new
one. Only then is a tlog-cosignature/v1 line added and the state moved on, under a lock, so two
cosign runs at once can never roll the witness back. A store-key holder who rewrites history
can re-sign checkpoints, but cannot get this witness to cosign them.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capa.audit.errors import SigningError, TamperDetected
from capa.audit.keys import generate_private_key, load_private_key
from capa.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from capa.audit.notes import cosign_note, cosignature_time, open_note, parse_checkpoint
from capa.audit.proofs import parse_consistency
from capa.audit.vkeys import (
    COSIGNATURE_TYPE,
    ED25519_SIGNATURE_TYPE,
    Verifier,
    parse_vkey,
    valid_key_name,
    vkey,
)
from capa.domain.errors import InvalidInput, NotFound

__all__ = ["cosign", "init_witness", "read_vkey", "require_cosignatures"]

KEY, STATE, LOCK = "witness.key", "witness.json", "witness.lock"


def read_vkey(value: str, signature_type: bytes, what: str) -> Verifier:
    """A vkey given on the command line, or the path of a file holding one."""
    text = value
    path = Path(value)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read {what} {value}: {exc}") from None
    try:
        verifier = parse_vkey(text)
    except SigningError as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    if verifier.signature_type != signature_type:
        kind = "witness cosignature (type 0x04)" if signature_type == COSIGNATURE_TYPE else \
            "store signature (type 0x01)"
        raise InvalidInput(f"{what}: {verifier.name} is not a {kind} key")
    return verifier


def _write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file whole, whatever the umask, replacing ``path`` atomically."""
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def init_witness(name: str, folder: Path, log_vkey: str | None) -> dict[str, Any]:
    """Create a witness in a new (or empty) folder; return its cosignature vkey."""
    if not valid_key_name(name):
        raise InvalidInput(f"witness name {name!r} must be non-empty, without spaces or '+'")
    trusted = read_vkey(log_vkey, ED25519_SIGNATURE_TYPE, "--log-vkey") if log_vkey else None
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{folder} exists and is not an empty folder; a witness is never "
                           "replaced")
    if not folder.parent.is_dir():
        raise NotFound(f"folder {str(folder.parent)!r} does not exist")
    folder.mkdir(mode=0o700, exist_ok=True)
    key = generate_private_key(folder / KEY)
    state: dict[str, Any] = {"name": name, "log_vkey": trusted.text() if trusted else None,
                             "logs": {}}
    _write_private(folder / STATE, _dump(state))
    # Made now, so that a cosign run (even a refused one) never adds a file to the folder.
    _write_private(folder / LOCK, b"")
    return {"name": name, "dir": str(folder),
            "vkey": vkey(name, key, COSIGNATURE_TYPE),
            "log_vkey": state["log_vkey"]}


def _dump(state: dict[str, Any]) -> bytes:
    return json.dumps(state, indent=2, sort_keys=True).encode("utf-8") + b"\n"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load_state(folder: Path) -> dict[str, Any]:
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no witness in {folder}; create one with capa audit witness init"
                       ) from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{folder / STATE} is not a witness state file: {exc}") from None
    if not (isinstance(state, dict) and isinstance(state.get("name"), str)
            and isinstance(state.get("logs"), dict)):
        raise InvalidInput(f"{folder / STATE} is not a witness state file")
    return state


def cosign(note_path: Path, folder: Path, proof_path: Path | None,
           now: int | None = None) -> dict[str, Any]:
    """Check a checkpoint against what this witness saw before, then cosign it."""
    note = _read_text(note_path).rstrip("\n") + "\n"
    proof_text = _read_text(proof_path) if proof_path else None
    try:
        checkpoint = parse_checkpoint(note).checkpoint
    except SigningError as exc:
        raise InvalidInput(f"{note_path}: not a checkpoint: {exc}") from None
    proof = parse_consistency(proof_text) if proof_text is not None else None
    if not (folder / STATE).is_file():
        raise NotFound(f"no witness in {folder}; create one with capa audit witness init")
    with _locked(folder):
        state = _load_state(folder)
        try:
            key = load_private_key(folder / KEY)
        except SigningError as exc:
            raise InvalidInput(str(exc)) from None
        name = state["name"]
        if state.get("log_vkey"):
            trusted = read_vkey(state["log_vkey"], ED25519_SIGNATURE_TYPE, "the trusted vkey")
            if checkpoint.origin != trusted.name:
                raise TamperDetected(f"{note_path}: a checkpoint of {checkpoint.origin!r}; this "
                                     f"witness cosigns only those of {trusted.name!r}")
            try:
                open_note(note, trusted.public_key, trusted.name)
            except SigningError as exc:
                raise TamperDetected(f"{note_path}: {exc}; the witness cosigns only "
                                     f"checkpoints signed by {trusted.name}") from None
        if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
            raise TamperDetected(f"{note_path}: an empty tree must have the empty root")
        last = state["logs"].get(checkpoint.origin)
        _check_consistent(checkpoint.size, checkpoint.root_hash, last, proof, note_path)
        timestamp = int(time.time()) if now is None else now
        cosigned = cosign_note(note, name, key, timestamp)
        state["logs"][checkpoint.origin] = {
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root_hash).decode("ascii"),
            "cosigned_at": timestamp}
        _write_private(folder / STATE, _dump(state))
    return {"witness": name, "origin": checkpoint.origin, "size": checkpoint.size,
            "previous_size": last["size"] if last else None, "cosigned_at": timestamp,
            "note": cosigned}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def _check_consistent(size: int, root: bytes, last: dict[str, Any] | None,
                      proof: Any, where: Path) -> None:
    if last is None:
        # The first checkpoint of a log: the empty tree is consistent with every tree.
        if proof is not None and (proof.old_size != 0 or proof.hashes):
            raise TamperDetected(f"the witness has cosigned nothing of this log yet, but the "
                                 f"proof starts at size {proof.old_size}")
        return
    try:
        old_size, old_root = int(last["size"]), base64.b64decode(last["root"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise InvalidInput("the witness state file is damaged") from None
    if proof is None:
        raise InvalidInput(f"the witness last cosigned {old_size} events of this log; give "
                           "--proof from capa audit consistency --from that checkpoint")
    if proof.old_size != old_size:
        raise TamperDetected(f"the proof starts at size {proof.old_size}, but the witness last "
                             f"cosigned {old_size} events of this log")
    if size < old_size:
        raise TamperDetected(f"{where} has {size} events, fewer than the {old_size} the witness "
                             "cosigned before; the log was rolled back")
    try:
        verify_consistency(old_size, size, proof.hashes, old_root, root)
    except ProofError as exc:
        raise TamperDetected(f"{where} is not consistent with the checkpoint of {old_size} "
                             f"events the witness cosigned before ({exc}); the history was "
                             "rewritten") from None


def require_cosignatures(notes: Iterable[tuple[str, str, int]],
                         witnesses: Sequence[Verifier]) -> list[dict[str, Any]]:
    """For each witness, the largest checked checkpoint it cosigned; raise TamperDetected if
    it cosigned none of them, or if a line claiming to be its cosignature does not verify.

    ``notes`` are (name, note text, size) of checkpoints already verified against the store."""
    notes = list(notes)
    found = []
    for witness in witnesses:
        best: tuple[int, int] | None = None
        for name, note, size in notes:
            try:
                at = cosignature_time(note, witness)
            except SigningError as exc:
                raise TamperDetected(f"{name}: {exc}") from None
            if at is not None and (best is None or size > best[0]):
                best = (size, at)
        if best is None:
            raise TamperDetected(f"no checkpoint checked carries a valid cosignature by witness "
                                 f"{witness.name}; give the cosigned checkpoint with --against "
                                 "(or --checkpoint)")
        found.append({"witness": witness.name, "size": best[0], "cosigned_at": best[1]})
    return found
