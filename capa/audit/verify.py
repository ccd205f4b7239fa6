"""Checkpoints, verification and inclusion proofs of a store's audit ledger (SPEC §5).

What a verification proves, and how:

- every stored event still hashes to the leaf the ledger recorded for its position (this names
  the first changed, deleted, inserted or reordered event);
- every checkpoint in the checkpoint log is signed by the store's key, and the root recomputed
  from the stored events at its size is the signed root (this holds even when an attacker also
  rewrote the ledger table, because the signature cannot be recomputed without the key);
- a checkpoint kept elsewhere (``--against``) is signed by the store's key and the current tree
  extends it, by an RFC 6962 consistency proof computed from the recomputed leaves.

The store is read in one streaming pass whose memory does not grow with the log.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from capa.adapters.files import private_file
from capa.audit.ledger import LEAF_HASH_PREFIX, Ledger, StoredEvent, leaf_of
from capa.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    TreeBuilder,
    consistency_proof,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from capa.audit.signing import (
    Checkpoint,
    SigningError,
    Verifier,
    create_checkpoint,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    parse_checkpoint,
    public_key_pem,
    sign_checkpoint,
    verify_checkpoint,
)
from capa.domain.errors import IntegrityFailure, InvalidInput, NotFound

__all__ = [
    "CheckpointLog",
    "TamperDetected",
    "checkpoint_log_path",
    "configured_key_path",
    "configured_log_path",
    "create_store_key",
    "default_key_path",
    "describe_record",
    "make_checkpoint",
    "origin_of",
    "prove_record",
    "public_key_for",
    "verify_store",
]

#: Leaves hashed per block: a power of two, so whole blocks fold into the tree as one subtree.
_BLOCK_HEIGHT = 12
_BLOCK = 1 << _BLOCK_HEIGHT


class TamperDetected(IntegrityFailure):
    """Verification failed; names the first bad position, record and version where it can."""

    def __init__(self, message: str, *, position: int | None = None, record: str | None = None,
                 version: int | None = None) -> None:
        where = ""
        if position is not None:
            where = f"position {position}"
            if record is not None:
                where += f" ({record} version {version})"
            where += ": "
        super().__init__(f"integrity check failed: {where}{message}")
        self.position = position
        self.record = record
        self.version = version


# -- where keys and checkpoints live ---------------------------------------------------------


def _is_uri(target: str) -> bool:
    return "://" in target or target.startswith(("postgresql:", "postgres:"))


#: Why a PostgreSQL store needs its key and log placed: the server holds no file of capa's to
#: sit beside, and the folder a command happens to run in is no place for a trust anchor.
_UNPLACED = ("a PostgreSQL store keeps its {what} in a file you choose: give {option}, or set "
             "{env} (see docs/postgres.md)")


def configured_key_path(target: str) -> Path | None:
    """Where the store key is configured to be: CAPA_KEY, else ``<store>.key`` beside a SQLite
    file; None for a PostgreSQL store without CAPA_KEY."""
    env = os.environ.get("CAPA_KEY")
    if env:
        return Path(env)
    return None if _is_uri(target) else Path(f"{target}.key")


def configured_log_path(target: str, key_path: Path | None = None) -> Path | None:
    """Where the checkpoint log is configured to be: CAPA_CHECKPOINTS, else
    ``<store>.checkpoints`` beside a SQLite file; for a PostgreSQL store beside its configured
    key (``<key name>.checkpoints``), else None."""
    env = os.environ.get("CAPA_CHECKPOINTS")
    if env:
        return Path(env)
    if not _is_uri(target):
        return Path(f"{target}.checkpoints")
    key_path = key_path or configured_key_path(target)
    return key_path.with_suffix(".checkpoints") if key_path is not None else None


def default_key_path(target: str) -> Path:
    """The store key outside the store: CAPA_KEY, else ``<store>.key``; a PostgreSQL store
    needs CAPA_KEY (or --key), InvalidInput otherwise."""
    path = configured_key_path(target)
    if path is None:
        raise InvalidInput(_UNPLACED.format(what="signing key", option="--key PATH",
                                            env="CAPA_KEY"))
    return path


def checkpoint_log_path(target: str, key_path: Path | None = None) -> Path:
    """The checkpoint log: CAPA_CHECKPOINTS, else ``<store>.checkpoints``, else (PostgreSQL)
    beside the store key; InvalidInput when a PostgreSQL store configures neither."""
    path = configured_log_path(target, key_path)
    if path is None:
        raise InvalidInput(_UNPLACED.format(what="checkpoint log", option="--checkpoints FILE",
                                            env="CAPA_CHECKPOINTS (or CAPA_KEY)"))
    return path


def create_store_key(key_path: Path) -> str:
    """Create the store's signing key (mode 0600) and ``<key>.pub`` beside it; return the
    fingerprint that the store's first event records."""
    if key_path.exists():
        raise InvalidInput(f"a key already exists at {key_path}; give another path with --key "
                           "(or CAPA_KEY), so that no store's key is ever replaced")
    if not key_path.parent.is_dir():
        raise NotFound(f"folder {str(key_path.parent)!r} for the store key does not exist")
    try:
        key = generate_private_key(key_path)
    except SigningError as exc:
        raise InvalidInput(str(exc)) from None
    # The public half is for every verifier to read, but never for others to replace: 0644
    # exactly, whatever the umask.
    fd = os.open(f"{key_path}.pub", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o644)
        out.write(public_key_pem(key))
    return fingerprint(key)


def public_key_for(key_path: Path | None, explicit: Path | None = None,
                   required: bool = True) -> Ed25519PublicKey | None:
    """The public key to verify with: an explicit PEM, else ``<key>.pub``, else derived from the
    private key file (None when no key's place is configured and none is required)."""
    try:
        if explicit is not None:
            return load_public_key(explicit)
        if key_path is None:
            if required:
                raise InvalidInput(_UNPLACED.format(what="signing key", option="--key PATH",
                                                    env="CAPA_KEY"))
            return None
        pub = Path(f"{key_path}.pub")
        if pub.is_file():
            return load_public_key(pub)
        if key_path.is_file():
            return load_private_key(key_path).public_key()
    except SigningError as exc:
        raise InvalidInput(str(exc)) from None
    if not required:
        return None
    raise NotFound(f"no store key at {key_path} (nor {key_path}.pub); give --key PATH or "
                   "--public-key PEM")


def origin_of(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The checkpoint origin of a store: named by its key, so it has no spaces and is stable."""
    return f"capa/{fingerprint(public_key)[:16]}"


# -- the checkpoint log ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedCheckpoint:
    number: int
    note: str


class CheckpointLog:
    """Signed notes appended to a text file, each followed by a blank line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> None:
        """Start an empty log (capa init): from then on a missing log is noticed (SPEC §9.4)."""
        if self.path.exists():
            raise InvalidInput(f"a checkpoint log already exists at {self.path}; give another "
                               "path with CAPA_CHECKPOINTS, so that no store's log is reused")
        os.close(private_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))

    def append(self, note: str) -> None:
        fd = private_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(note + "\n")
            out.flush()
            os.fsync(out.fileno())

    def notes(self) -> list[LoggedCheckpoint]:
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        blocks = [b for b in text.split("\n\n") if b.strip()]
        notes: list[str] = []
        body: str | None = None
        # A note is a body block then a signature block; the blank line inside a note and the
        # one between notes look alike, so blocks are paired by what they start with.
        for block in blocks:
            block = block.strip("\n")
            if block.startswith("\u2014 "):
                if body is None:
                    raise TamperDetected(f"{self.path}: signature lines without a checkpoint")
                notes.append(f"{body}\n\n{block}\n")
                body = None
            else:
                if body is not None:
                    raise TamperDetected(f"{self.path}: a checkpoint without a signature")
                body = block
        if body is not None:
            raise TamperDetected(f"{self.path}: the last checkpoint has no signature")
        return [LoggedCheckpoint(i, n) for i, n in enumerate(notes, start=1)]


# -- naming records --------------------------------------------------------------------------


def describe_record(app: Any, record_hex: str) -> str:
    """The human ref of a record (NC-2026-0001, USER-jchen, ...): as the ledger noted it when
    it first saw the record, else from the record's first event, else its hex id."""
    cache: dict[str, str] = app.__dict__.setdefault("_audit_refs", {})
    if record_hex not in cache:
        name = Ledger(app).name_of(record_hex) or record_hex
        try:
            if name != record_hex:
                raise LookupError
            stored = app.recorder.select_events(UUID(hex=record_hex), lte=1, limit=1)
            if stored:
                first: Any = app.mapper.to_domain_event(stored[0])
                name = str(getattr(first, "ref", None) or record_hex)
        except LookupError:
            pass
        except Exception:  # noqa: BLE001 - a damaged event names its record by id
            name = record_hex
        cache[record_hex] = name
    return cache[record_hex]


# -- checkpoints -----------------------------------------------------------------------------


def make_checkpoint(app: Any, key_path: Path, log_path: Path) -> dict[str, Any]:
    """Catch the ledger up, sign a checkpoint of the whole log and append it to the log."""
    try:
        key = load_private_key(key_path)
    except SigningError as exc:
        raise NotFound(f"{exc}; the store key is made by capa init (or give --key PATH)") from None
    tree = Ledger(app).catch_up()
    checkpoint = create_checkpoint(origin_of(key), tree.size, tree.root())
    note = sign_checkpoint(checkpoint, key)
    CheckpointLog(log_path).append(note)
    return {"origin": checkpoint.origin, "size": checkpoint.size,
            "root": checkpoint.root_hash.hex(), "time": checkpoint.time,
            "key_fingerprint": fingerprint(key), "log": str(log_path), "note": note}


# -- streaming recomputation -----------------------------------------------------------------


def _append_subtree(tree: TreeBuilder, root: bytes, height: int) -> TreeBuilder:
    """Append a perfect subtree of 2**height leaves to a tree whose size is a multiple of it."""
    frontier = list(tree.frontier)
    node, n = root, tree.size >> height
    while n & 1:
        node = node_hash(frontier.pop(), node)
        n >>= 1
    frontier.append(node)
    return TreeBuilder.restore(tree.size + (1 << height), frontier)


def _fold(leaves: list[bytes]) -> bytes:
    """Root of a perfect subtree (len(leaves) a power of two), level by level.

    Same hashes as merkle.node_hash, inlined: this runs once per event of the log (P3)."""
    sha256 = hashlib.sha256
    level = leaves
    while len(level) > 1:
        level = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2],
                                                                    strict=True)]
    return level[0]


def _leaves(chunk: Sequence[StoredEvent], first: int) -> list[bytes]:
    """ledger.leaf_of over a chunk, inlined into one comprehension for speed (P3)."""
    sha256, prefix = hashlib.sha256, LEAF_HASH_PREFIX
    return [sha256(b"".join((prefix, f"{p}\n{e[1]}\n{e[2]}\n{e[3]}\n".encode(), e[4]))).digest()
            for p, e in enumerate(chunk, start=first)]


@dataclass
class _Recomputed:
    """What one pass over the stored events yields."""

    count: int = 0
    roots: dict[int, bytes] = field(default_factory=dict)
    range_roots: dict[tuple[int, int], bytes] = field(default_factory=dict)
    mismatch: int | None = None


def _recompute(ledger: Ledger, sizes: set[int], ranges: Sequence[tuple[int, int]],
               limit: int, observe: Any = None) -> _Recomputed:
    """Hash the first ``limit`` stored events; keep the root at every size in ``sizes`` and the
    subtree root of every (start, end) leaf range in ``ranges`` (disjoint ranges). ``observe``,
    if given, sees each chunk of events and the position before it (the signature check)."""
    result = _Recomputed()
    if 0 in sizes:
        result.roots[0] = EMPTY_ROOT
    tree = TreeBuilder()
    builders = {r: TreeBuilder() for r in ranges}
    edges = set(sizes) | {b for r in ranges for b in r}
    base = 0
    for chunk in ledger.events(_BLOCK):
        if base >= limit:
            break
        chunk = chunk[: limit - base]
        if observe is not None:
            observe(chunk, base)
        leaves = _leaves(chunk, base + 1)
        end = base + len(leaves)
        fast = len(leaves) == _BLOCK and base % _BLOCK == 0 and not any(
            base < edge < end for edge in edges)
        if fast:
            # One whole aligned block: fold it to one subtree root in list comprehensions and
            # graft it onto the tree and onto the range that contains it, if any.
            block_root = _fold(leaves)
            tree = _append_subtree(tree, block_root, _BLOCK_HEIGHT)
            for (start, stop), builder in builders.items():
                if start <= base and end <= stop:
                    # A tree node that holds a whole block starts on a block boundary, so the
                    # graft is exact; the leaf-by-leaf branch is only a safety net.
                    if builder.size % _BLOCK == 0:
                        builders[(start, stop)] = _append_subtree(builder, block_root,
                                                                  _BLOCK_HEIGHT)
                    else:
                        builder.extend(leaves)
            if end in sizes:
                result.roots[end] = tree.root()
        else:
            for index, leaf in enumerate(leaves, start=base):
                tree.append(leaf)
                for (start, stop), builder in builders.items():
                    if start <= index < stop:
                        builder.append(leaf)
                if index + 1 in sizes:
                    result.roots[index + 1] = tree.root()
        base = end
    result.count = base
    result.range_roots = {r: b.root() for r, b in builders.items() if b.size == r[1] - r[0]}
    return result


def _locate(app: Any, ledger: Ledger, limit: int) -> TamperDetected | None:
    """Walk the stored events and the ledger side by side; describe the first difference."""
    rows = (row for chunk in ledger.rows() for row in chunk)
    position = 0
    for chunk in ledger.events(_BLOCK):
        for event in chunk:
            position += 1
            if position > limit:
                return None
            row = next(rows, None)
            if row is None:
                return None
            if row.notification_id != event[0] or row.leaf_hash != leaf_of(position, event):
                expected = describe_record(app, row.record_id)
                found = describe_record(app, event[1])
                if (row.record_id, row.version) == (event[1], event[2]):
                    what = "the stored event was changed since it was recorded"
                else:
                    what = (f"the ledger recorded this event here, but the store now holds "
                            f"{found} version {event[2]}; events were deleted, inserted or "
                            "reordered")
                return TamperDetected(what, position=position, record=expected,
                                      version=row.version)
    if position < limit:
        row = ledger.row(position + 1)
        record = describe_record(app, row.record_id) if row else None
        return TamperDetected(f"the event is missing: the ledger covers {limit} events, the "
                              f"store holds {position}", position=position + 1, record=record,
                              version=row.version if row else None)
    return None


def _proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make up the consistency proof from size1 to size2, in
    proof order (they depend on the sizes only)."""
    ranges: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return EMPTY_ROOT

    consistency_proof(size1, size2, record)
    ranges.reverse()
    return ranges


def _read_note(path: Path) -> str:
    try:
        # A copy kept by hand may have gained or lost blank lines at the end; nothing signed.
        return path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read checkpoint {path}: {exc}") from None


def _trusted(note: str, key: Ed25519PublicKey, name: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, key)
    except SigningError as exc:
        raise TamperDetected(f"{name}: {exc}; the checkpoint is forged or damaged, or was "
                             f"signed by another key than {fingerprint(key)}") from None


def verify_store(app: Any, public_key: Ed25519PublicKey | None, log_path: Path | None,
                 against: Iterable[Path] = (), witnesses: Sequence[Verifier] = (), *,
                 key_path: Path | None = None, caches: bool = True) -> dict[str, Any]:
    """Verify the store's events, its checkpoint log and any kept checkpoints, then (unless
    `caches` is false) every snapshot and read-table row against the verified events
    (capa.audit.caches); return a summary or raise TamperDetected naming the first bad position,
    record and version (or, for the caches, CachesDiffer naming every row that differs)."""
    from capa.audit.caches import check_caches

    summary = _verify_log(app, public_key, log_path, against, witnesses, key_path=key_path)
    return check_caches(app, summary) if caches else summary


def _verify_log(app: Any, public_key: Ed25519PublicKey | None, log_path: Path | None,
                against: Iterable[Path] = (), witnesses: Sequence[Verifier] = (), *,
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
    bound = _bound_fingerprint(app)
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
        return _verify_events_only(app)
    ledger = Ledger(app)
    tree = ledger.catch_up()
    size, ledger_root = tree.size, tree.root()
    logged = [(f"checkpoint {c.number} of {log_path}", _trusted(c.note, public_key,
                                                                 f"checkpoint {c.number} of "
                                                                 f"{log_path}"))
              for c in log_notes]
    kept_notes = [_read_note(p) for p in against]
    kept = [(str(p), _trusted(n, public_key, f"kept checkpoint {p}"))
            for p, n in zip(against, kept_notes, strict=True)]
    sizes = {size} | {cp.size for _, cp in logged + kept if cp.size <= size}
    # The ranges of one proof are disjoint; those of several kept checkpoints may overlap, so
    # each further kept checkpoint costs one more pass (auditors keep one or two).
    passes = [_proof_ranges(cp.size, size) for _, cp in kept if cp.size <= size] or [[]]
    signatures = _signature_check(app)
    readable = _Readable(app, max((cp.size for _, cp in logged + kept if cp.size <= size),
                                  default=0), signatures.observe)
    recomputed = _recompute(ledger, sizes, passes[0], size, readable.observe)
    for extra in passes[1:]:
        recomputed.range_roots.update(_recompute(ledger, set(), extra, size).range_roots)

    if recomputed.count < size or recomputed.roots.get(size) != ledger_root:
        found = _locate(app, ledger, size)
        raise found or TamperDetected(
            f"the events no longer hash to the ledger's root of {size} events, and the ledger "
            "table itself was altered")

    verified_upto = 0
    for name, cp in sorted(logged, key=lambda item: item[1].size):
        _check_against_tree(app, ledger, name, cp, recomputed, size, verified_upto)
        verified_upto = cp.size
    for name, cp in kept:
        if cp.size > size:
            _check_against_tree(app, ledger, name, cp, recomputed, size, 0)
        proof = [recomputed.range_roots[r] for r in _proof_ranges(cp.size, size)]
        try:
            verify_consistency(cp.size, size, proof, cp.root_hash, recomputed.roots[size])
        except ProofError as exc:
            raise TamperDetected(f"{name}: the store is not an extension of the kept checkpoint "
                                 f"({cp.size} events, {cp.shown_time}): {exc}; the history "
                                 "before it was rewritten") from None

    bound = _bound_fingerprint(app)
    key_fp = fingerprint(public_key)
    if bound is not None and bound != key_fp:
        raise TamperDetected(f"the store's first event names key {bound}, but the checkpoints "
                             f"are checked with key {key_fp}; the store key was replaced",
                             position=1)
    cosigned: list[dict[str, Any]] = []
    if witnesses:
        from capa.audit.witness import require_cosignatures

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


def _check_events(app: Any, ledger: Ledger, tree: Any) -> None:
    """Every stored event still hashes to the leaf the ledger recorded for it, else
    TamperDetected naming the first that does not."""
    recomputed = _recompute(ledger, {tree.size}, [], tree.size)
    if recomputed.count < tree.size or recomputed.roots.get(tree.size) != tree.root():
        raise _locate(app, ledger, tree.size) or TamperDetected(
            "the events no longer hash to the ledger's root")


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


def _verify_events_only(app: Any) -> dict[str, Any]:
    ledger = Ledger(app)
    tree = ledger.catch_up()
    signatures = _signature_check(app)
    readable = _Readable(app, 0, signatures.observe)
    recomputed = _recompute(ledger, {tree.size}, [], tree.size, readable.observe)
    if recomputed.count < tree.size or recomputed.roots.get(tree.size) != tree.root():
        raise _locate(app, ledger, tree.size) or TamperDetected(
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

    def __init__(self, app: Any, after: int, observe: Any) -> None:
        self.app, self.after, self.inner = app, after, observe
        self.failure: TamperDetected | None = None

    def observe(self, chunk: Sequence[StoredEvent], base: int) -> None:
        self.inner(chunk, base)
        if self.failure is not None or base + len(chunk) <= self.after:
            return
        import json

        from eventsourcing.utils import resolve_topic

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
                    position=base + index + 1, record=describe_record(self.app, event[1]),
                    version=event[2])
                return

    def result(self) -> None:
        if self.failure is not None:
            raise self.failure


def _signature_check(app: Any) -> Any:
    """Every electronic signature and key endorsement, checked in the same pass (SPEC §9.2;
    capa.audit.signatures): this holds even where no checkpoint covers the events yet."""
    from capa.audit.signatures import StoreSignatures

    return StoreSignatures(app)


def _check_against_tree(app: Any, ledger: Ledger, name: str, cp: Checkpoint,
                        recomputed: _Recomputed, size: int, verified_upto: int) -> None:
    if cp.size > size:
        row = ledger.row(size + 1)
        raise TamperDetected(f"{name} covers {cp.size} events but the store holds {size}; "
                             "events were deleted at the tail", position=size + 1,
                             record=describe_record(app, row.record_id) if row else None,
                             version=row.version if row else None)
    if recomputed.roots[cp.size] != cp.root_hash:
        raise TamperDetected(
            f"{name} ({cp.size} events, signed {cp.shown_time}): the stored events 1..{cp.size} no "
            f"longer have the signed root; the change lies after position {verified_upto}, "
            "and the ledger table was altered to hide it")


def _bound_fingerprint(app: Any) -> str | None:
    try:
        value = app.store_info().get("key_fingerprint")
    except Exception:  # noqa: BLE001 - a store without its first record binds no key
        return None
    return str(value) if value else None


# -- inclusion proofs ------------------------------------------------------------------------


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
    from capa.domain.record import record_uuid
    from capa.domain.user import is_user_id, user_ref

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
    _check_events(app, ledger, tree)
    size, note = tree.size, None
    checkpoints = CheckpointLog(log_path).notes()
    for logged in reversed(checkpoints):
        cp = parse_checkpoint(logged.note).checkpoint
        if cp.size >= rows[-1].position:
            if public_key is not None:
                _trusted(logged.note, public_key, f"checkpoint {logged.number} of {log_path}")
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
