"""Verification of a store's audit ledger (SPEC §5, §9).

What a verification proves, and how:

- every stored event still hashes to the leaf the ledger recorded for its position (this names
  the first changed, deleted, inserted or reordered event);
- every checkpoint in the checkpoint log is signed by the store's key, and the root recomputed
  from the stored events at its size is the signed root (this holds even when an attacker also
  rewrote the ledger table, because the signature cannot be recomputed without the key);
- a checkpoint kept elsewhere (``--against``) is signed by the store's key and the current tree
  extends it, by an RFC 6962 consistency proof computed from the recomputed leaves;
- in the same pass, every electronic signature (capa.audit.signatures) and, after it, every
  snapshot and read-table row (capa.audit.caches).

The store is read in one streaming pass whose memory does not grow with the log
(capa.audit.recompute).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.utils import resolve_topic

from capa.audit.caches import check_caches
from capa.audit.checkpoints import CheckpointLog, read_note, trusted
from capa.audit.errors import TamperDetected
from capa.audit.keys import bound_fingerprint, fingerprint
from capa.audit.leaves import StoredEvent
from capa.audit.ledger import Ledger
from capa.audit.merkle import ProofError, verify_consistency
from capa.audit.naming import RecordNames
from capa.audit.notes import Checkpoint
from capa.audit.recompute import Observer, Recomputed, locate, proof_ranges, recompute
from capa.audit.signature_checks import StoreSignatures
from capa.audit.vkeys import Verifier
from capa.audit.witness import require_cosignatures
from capa.domain.errors import NotFound

__all__ = ["verify_store"]


def verify_store(app: Any, public_key: Ed25519PublicKey | None, log_path: Path | None,
                 against: Iterable[Path] = (), witnesses: Sequence[Verifier] = (), *,
                 key_path: Path | None = None, caches: bool = True) -> dict[str, Any]:
    """Verify the store's events, its checkpoint log and any kept checkpoints, then (unless
    `caches` is false) every snapshot and read-table row against the verified events
    (capa.audit.caches); return a summary or raise TamperDetected naming the first bad position,
    record and version (or, for the caches, CachesDiffer naming every row that differs)."""
    names = RecordNames(app)
    summary = _verify_log(app, names, public_key, log_path, against, witnesses,
                          key_path=key_path)
    return check_caches(app, summary, names) if caches else summary


def _verify_log(app: Any, names: RecordNames, public_key: Ed25519PublicKey | None,
                log_path: Path | None, against: Iterable[Path] = (),
                witnesses: Sequence[Verifier] = (), *,
                key_path: Path | None = None) -> dict[str, Any]:
    """Verify the store's events, its checkpoint log and any kept checkpoints; return a summary
    or raise TamperDetected naming the first bad position, record and version.

    A store bound to a key (its first event names the fingerprint) is verified strictly: it
    fails when the key or the checkpoint log cannot be found, unless the auditor names what to
    check against (SPEC §9.4); otherwise moving the log away would pass for a store that was
    never checkpointed. Only an unbound store (made before stores had keys) may be checked
    without a key, against the ledger alone. ``key_path`` is where the key was looked for.
    Each of ``witnesses`` must have cosigned one of the checkpoints checked."""
    against = list(against)
    bound = bound_fingerprint(app)
    if bound is not None:
        _require_trust_anchors(f"the store is bound to key {bound[:16]}", public_key, log_path,
                               against, key_path)
    elif public_key is not None:
        # No command makes a key for a store of an earlier release, so a key beside a store
        # whose first event names none means that event was rewritten: held as strictly.
        _require_trust_anchors(f"a store key ({fingerprint(public_key)[:16]}) was found",
                               public_key, log_path, against, key_path)
    log_notes = CheckpointLog(log_path).notes() if log_path is not None else []
    if public_key is None:
        if against or witnesses or log_notes:
            raise NotFound("checkpoints need the store's public key to be checked; give --key "
                           "PATH or --public-key PEM")
        return _verify_events_only(app, names)
    ledger = Ledger(app)
    tree = ledger.catch_up()
    size, ledger_root = tree.size, tree.root()
    logged = [(f"checkpoint {c.number} of {log_path}", trusted(c.note, public_key,
                                                                 f"checkpoint {c.number} of "
                                                                 f"{log_path}"))
              for c in log_notes]
    kept_notes = [read_note(p) for p in against]
    kept = [(str(p), trusted(n, public_key, f"kept checkpoint {p}"))
            for p, n in zip(against, kept_notes, strict=True)]
    sizes = {size} | {cp.size for _, cp in logged + kept if cp.size <= size}
    # The ranges of one proof are disjoint; those of several kept checkpoints may overlap, so
    # each further kept checkpoint costs one more pass (auditors keep one or two).
    passes = [proof_ranges(cp.size, size) for _, cp in kept if cp.size <= size] or [[]]
    signatures = StoreSignatures(app)
    readable = _Readable(names, max((cp.size for _, cp in logged + kept if cp.size <= size),
                                  default=0), signatures.observe)
    recomputed = recompute(ledger, sizes, passes[0], size, readable.observe)
    for extra in passes[1:]:
        recomputed.range_roots.update(recompute(ledger, set(), extra, size).range_roots)

    if recomputed.count < size or recomputed.roots.get(size) != ledger_root:
        found = locate(names, ledger, size)
        raise found or TamperDetected(
            f"the events no longer hash to the ledger's root of {size} events, and the ledger "
            "table itself was altered")

    verified_upto = 0
    for name, cp in sorted(logged, key=lambda item: item[1].size):
        _check_against_tree(names, ledger, name, cp, recomputed, size, verified_upto)
        verified_upto = cp.size
    for name, cp in kept:
        if cp.size > size:
            _check_against_tree(names, ledger, name, cp, recomputed, size, 0)
        proof = [recomputed.range_roots[r] for r in proof_ranges(cp.size, size)]
        try:
            verify_consistency(cp.size, size, proof, cp.root_hash, recomputed.roots[size])
        except ProofError as exc:
            raise TamperDetected(f"{name}: the store is not an extension of the kept checkpoint "
                                 f"({cp.size} events, {cp.shown_time}): {exc}; the history "
                                 "before it was rewritten") from None

    bound = bound_fingerprint(app)
    key_fp = fingerprint(public_key)
    if bound is not None and bound != key_fp:
        raise TamperDetected(f"the store's first event names key {bound}, but the checkpoints "
                             f"are checked with key {key_fp}; the store key was replaced",
                             position=1)
    cosigned: list[dict[str, Any]] = []
    if witnesses:
        cosigned = require_cosignatures(
            [(n, c.note, cp.size) for (n, cp), c in zip(logged, log_notes, strict=True)]
            + [(n, text, cp.size) for (n, cp), text in zip(kept, kept_notes, strict=True)],
            witnesses)
    readable.result()
    return {"events": size, "root": recomputed.roots[size].hex(), "key_fingerprint": key_fp,
            "checkpoints": len(logged), "latest_checkpoint": max(
                (cp.size for _, cp in logged), default=None),
            "kept_checkpoints": [{"file": n, "size": cp.size, "time": cp.time}
                                 for n, cp in kept], "witnesses": cosigned,
            "signatures": signatures.result(), "status": "verified"}


def _require_trust_anchors(store: str, public_key: Ed25519PublicKey | None,
                           log_path: Path | None, against: list[Path],
                           key_path: Path | None) -> None:
    """A bound store is checked against its key and its checkpoint log, or against what the
    auditor names instead; TamperDetected (exit 6) saying what is missing otherwise."""
    if public_key is None:
        where = (f"at {key_path} (nor {key_path}.pub)" if key_path is not None
                 else "(none is configured for this PostgreSQL store)")
        raise TamperDetected(f"{store}, but no key was found {where}; point at its public key "
                             "with --public-key PEM, or at the key with --key PATH or CAPA_KEY")
    if against or (log_path is not None and log_path.is_file()):
        return
    missing = (f"its checkpoint log {log_path} is missing" if log_path is not None
               else "no checkpoint log is configured for this PostgreSQL store")
    raise TamperDetected(f"{store}, but {missing}; point at the log with --checkpoints FILE "
                         "or CAPA_CHECKPOINTS, or check against a kept checkpoint with "
                         "--against FILE")


def _verify_events_only(app: Any, names: RecordNames) -> dict[str, Any]:
    ledger = Ledger(app)
    tree = ledger.catch_up()
    signatures = StoreSignatures(app)
    readable = _Readable(names, 0, signatures.observe)
    recomputed = recompute(ledger, {tree.size}, [], tree.size, readable.observe)
    if recomputed.count < tree.size or recomputed.roots.get(tree.size) != tree.root():
        raise locate(names, ledger, tree.size) or TamperDetected(
            "the events no longer hash to the ledger's root")
    readable.result()
    return {"events": tree.size, "root": tree.root().hex(), "key_fingerprint": None,
            "checkpoints": 0, "latest_checkpoint": None, "kept_checkpoints": [],
            "signatures": signatures.result(), "status": "verified"}


class _Readable:
    """Every event after `after` (the largest checkpoint checked: events it covers are the
    bytes capa signed, so they decode) must be an event capa can read: JSON of an object, of a
    known type. A row written past capa that the ledger took in as it was (no checkpoint
    covers it yet) is reported here, at its position (exit 6), not when someone opens it."""

    def __init__(self, names: RecordNames, after: int, observe: Observer) -> None:
        self.names, self.after, self.inner = names, after, observe
        self.failure: TamperDetected | None = None

    def observe(self, chunk: Sequence[StoredEvent], base: int) -> None:
        self.inner(chunk, base)
        if self.failure is not None or base + len(chunk) <= self.after:
            return
        for index in range(max(0, self.after - base), len(chunk)):
            event = chunk[index]
            try:
                readable = isinstance(json.loads(event[4]), dict) and event[3].startswith(
                    "capa.") and resolve_topic(event[3]) is not None
            except Exception:  # noqa: BLE001 - bytes that are not JSON, a type that is no class
                readable = False
            if not readable:
                self.failure = TamperDetected(
                    "mismatch: the stored event is not an event capa can read (its state is "
                    "not JSON of an object, or its type is unknown); it was written past capa",
                    position=base + index + 1, record=self.names(event[1]),
                    version=event[2])
                return

    def result(self) -> None:
        if self.failure is not None:
            raise self.failure


def _check_against_tree(names: RecordNames, ledger: Ledger, name: str, cp: Checkpoint,
                        recomputed: Recomputed, size: int, verified_upto: int) -> None:
    if cp.size > size:
        row = ledger.row(size + 1)
        raise TamperDetected(f"{name} covers {cp.size} events but the store holds {size}; "
                             "events were deleted at the tail", position=size + 1,
                             record=names(row.record_id) if row else None,
                             version=row.version if row else None)
    if recomputed.roots[cp.size] != cp.root_hash:
        raise TamperDetected(
            f"{name} ({cp.size} events, signed {cp.shown_time}): the stored events 1..{cp.size} no "
            f"longer have the signed root; the change lies after position {verified_upto}, "
            "and the ledger table was altered to hide it")
