"""Proofs of the ledger: inclusion proofs of a record's events, consistency between checkpoints.

``prove_record`` proves every event of one record against the latest logged checkpoint that
covers them; the proofs are also written in C2SP text formats (SPEC §9.7): tlog-proof inclusion
proofs and consistency proofs.

A tlog-proof (https://c2sp.org/tlog-proof) proves one event::

    c2sp.org/tlog-proof@v1
    index <0-based leaf index, i.e. position - 1>
    <base64 hash>            (the RFC 6962 audit path, leaf's sibling first)
    ...
    <blank line>
    <the signed checkpoint, verbatim>

A consistency proof is printed as the first part of a tlog-witness ``add-checkpoint`` request::

    old <size of the earlier checkpoint>
    <base64 hash>            (the RFC 6962 consistency proof to the later checkpoint)
    ...

so that a witness gets the later checkpoint and this proof, and needs nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from capa.audit.checkpoints import CheckpointLog, trusted
from capa.audit.errors import SigningError, TamperDetected
from capa.audit.ledger import Ledger
from capa.audit.merkle import (
    HASH_SIZE,
    MerkleTree,
    ProofError,
    verify_consistency,
    verify_inclusion,
)
from capa.audit.naming import RecordNames
from capa.audit.notes import Checkpoint, parse_checkpoint, verify_checkpoint
from capa.audit.recompute import check_events, proof_ranges, recompute
from capa.domain.errors import InvalidInput, NotFound
from capa.domain.record import record_uuid
from capa.domain.user import is_user_id, user_ref

__all__ = [
    "ConsistencyProof",
    "consistency_between",
    "parse_consistency",
    "prove_record",
    "tlog_proofs",
]

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
#: tlog-witness caps a consistency proof at 63 hashes (a tree of 2**63 leaves needs no more).
MAX_PROOF_LINES = 63
_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def tlog_proofs(proved: dict[str, Any], version: int | None = None) -> str:
    """The tlog-proof of each event of a record, from what ``prove_record`` returned.

    Each proof is complete on its own (one per event, in position order); ``version`` keeps
    only the proof of that version, so that the output is one ``.tlog-proof`` file."""
    note = proved["checkpoint"]
    if note is None:
        raise NotFound(f"no checkpoint covers every event of {proved['id']} yet; run capa audit "
                       "checkpoint first (a tlog-proof needs a signed checkpoint)")
    events = [e for e in proved["events"] if version is None or e["version"] == version]
    if not events:
        raise NotFound(f"{proved['id']} has no version {version}")
    proofs = []
    for event in events:
        lines = [TLOG_PROOF_HEADER, f"index {event['position'] - 1}",
                 *(_b64(bytes.fromhex(h)) for h in event["proof"])]
        proofs.append("\n".join(lines) + "\n\n" + str(note))
    return "".join(proofs)


class ConsistencyProof:
    """``old <size>`` and the hashes of a consistency proof, as text or parsed from it."""

    def __init__(self, old_size: int, hashes: list[bytes]) -> None:
        self.old_size = old_size
        self.hashes = hashes

    def text(self) -> str:
        return "".join(f"{line}\n" for line in [f"old {self.old_size}",
                                                *map(_b64, self.hashes)])


def parse_consistency(data: str) -> ConsistencyProof:
    """Parse the text ``capa audit consistency`` prints; raises InvalidInput if malformed."""
    lines = data.rstrip("\n").split("\n")
    if not lines[0].startswith("old ") or not _SIZE_RE.fullmatch(lines[0][4:]):
        raise InvalidInput("a consistency proof starts with 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise InvalidInput(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    hashes = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            digest = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != HASH_SIZE or _b64(digest) != line:
            raise InvalidInput(f"line {number} of the consistency proof is not a base64 "
                               "SHA-256 hash")
        hashes.append(digest)
    return ConsistencyProof(int(lines[0][4:]), hashes)


def _signed(note: str, key: Ed25519PublicKey, name: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, key)
    except SigningError as exc:
        raise TamperDetected(f"{name}: {exc}") from None


def read_note(path: Path) -> str:
    """A checkpoint kept in a file; a copy kept by hand may have gained or lost final blank
    lines, which are not signed."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read checkpoint {path}: {exc}") from None


def consistency_between(app: Any, public_key: Ed25519PublicKey, older: Path,
                        newer: Path | None, log_path: Path) -> dict[str, Any]:
    """The consistency proof from the checkpoint in ``older`` to the one in ``newer`` (default:
    the latest of the checkpoint log), computed from the stored events and checked against both
    signed roots before it is returned (so a changed event can never yield a false proof)."""
    first = _signed(read_note(older), public_key, str(older))
    if newer is not None:
        second_name, second = str(newer), _signed(read_note(newer), public_key, str(newer))
    else:
        notes = CheckpointLog(log_path).notes()
        if not notes:
            raise NotFound(f"no checkpoint in {log_path}; run capa audit checkpoint, or give --to")
        second_name = f"checkpoint {notes[-1].number} of {log_path}"
        second = _signed(notes[-1].note, public_key, second_name)
    if first.origin != second.origin:
        raise InvalidInput(f"{older} is a checkpoint of {first.origin!r}, {second_name} of "
                           f"{second.origin!r}: not the same log")
    if first.size > second.size:
        raise InvalidInput(f"{older} ({first.size} events) is later than {second_name} "
                           f"({second.size} events); give the earlier one with --from")
    # The proof is made from the stored events themselves, in the one streaming pass that
    # `audit verify` uses, not from the ledger (a cache): the hashes it needs are the roots of
    # leaf ranges fixed by the two sizes.
    ranges = proof_ranges(first.size, second.size)
    recomputed = recompute(Ledger(app), set(), ranges, second.size)
    if recomputed.count < second.size:
        raise TamperDetected(f"{second_name} covers {second.size} events but the store holds "
                             f"{recomputed.count}; events were deleted at the tail")
    proof = [recomputed.range_roots[r] for r in ranges]
    try:
        verify_consistency(first.size, second.size, proof, first.root_hash, second.root_hash)
    except ProofError as exc:
        raise TamperDetected(f"{second_name} is not an extension of {older} ({exc}); the "
                             "history between them was rewritten, or the ledger was altered: "
                             "run capa audit verify") from None
    return {"origin": first.origin, "old_size": first.size, "old_root": first.root_hash.hex(),
            "new_size": second.size, "new_root": second.root_hash.hex(),
            "proof": [p.hex() for p in proof],
            "text": ConsistencyProof(first.size, proof).text()}


# -- inclusion proofs of a record ----------------------------------------------------------


class _Packed(Sequence[bytes]):
    """Leaf hashes packed 32 bytes apiece: a third of the memory of a list of bytes objects."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data) // 32

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return self._data[index * 32:(index + 1) * 32]


def prove_record(app: Any, ref: str, log_path: Path,
                 public_key: Ed25519PublicKey | None) -> dict[str, Any]:
    """Inclusion proofs of every event of one record, against the latest logged checkpoint
    that covers them all (else against the current root, unsigned)."""
    canonical = ref.strip()
    upper = canonical.upper()
    if upper.startswith(("NC-", "CA-")):
        canonical = upper
    elif not upper.startswith(("USER-", "EVIDENCE-")) and is_user_id(canonical):
        canonical = user_ref(canonical)  # a user id names the account's own record
    record_hex = record_uuid(canonical).hex
    ledger = Ledger(app)
    tree = ledger.catch_up()
    rows = ledger.positions_of(record_hex)
    if not rows:
        raise NotFound(f"{canonical} not found")
    # The proofs are of the ledger's leaves; they say something of the record only while the
    # stored events still hash to those leaves (SPEC §9.9).
    check_events(RecordNames(app, ledger), ledger, tree)
    size, note = tree.size, None
    checkpoints = CheckpointLog(log_path).notes()
    for logged in reversed(checkpoints):
        cp = parse_checkpoint(logged.note).checkpoint
        if cp.size >= rows[-1].position:
            if public_key is not None:
                trusted(logged.note, public_key, f"checkpoint {logged.number} of {log_path}")
            size, note = cp.size, logged.note
            break
    merkle = MerkleTree(_Packed(ledger.leaf_hashes(size)))
    root = merkle.root()
    if note is not None and parse_checkpoint(note).checkpoint.root_hash != root:
        raise TamperDetected(f"the ledger's root of {size} events is not the signed one; run "
                             "capa audit verify")
    proofs = []
    for row in rows:
        if row.position > size:
            break
        proof = merkle.inclusion_proof(row.position - 1, size)
        verify_inclusion(row.position - 1, size, row.leaf_hash, proof, root)
        proofs.append({"position": row.position, "version": row.version,
                       "leaf_hash": row.leaf_hash.hex(), "proof": [p.hex() for p in proof]})
    return {"id": canonical, "tree_size": size, "root": root.hex(), "checkpoint": note,
            "events": proofs}
