"""Audit bundles: the evidence an auditor takes away, and its offline verification (SPEC §5).

A bundle is a directory, or a ``.zip`` by extension, holding:

- ``events.jsonl``: one event per line in position order: ``position``, ``record_id`` (stored
  hex id), ``version``, ``event_type`` (stored topic), ``state_b64`` (the exact stored bytes),
  ``leaf_hash`` (hex, so a changed byte is pinned to its line), and decoded for reading:
  ``record`` (human ref), ``type``, ``time``, ``actor`` and ``data``, each derived from the
  stored bytes alone (``readable_fields``), so that a verifier holds them to the verified bytes;
- ``checkpoint.txt``: a signed checkpoint over exactly the exported events;
- ``public_key.pem``: the store's public key;
- ``manifest.json``: ``event_count``, ``tool_version``, and the SHA-256 of the other files.

An account event written by an earlier release holds a password hash (SPEC §9.3). Its line is
*withheld*: ``position``, ``record_id``, ``version``, ``event_type``, ``leaf_hash``, ``record``
(the account's ref), ``type`` and ``withheld`` (why), with no stored bytes. Its leaf still
counts in the tree, so the checkpoint proves its place; what it says is not proved, and the
verifiers say how many lines they could not read. Only such account events may be withheld
(``withheld_line``).

The files and their lines are capa.audit.bundle_files'; taking the evidence files out of a
verified bundle is capa.audit.bundle_evidence's.

``verify_bundle`` makes the same checks as the standalone ``scripts/verify_bundle.py``, with
capa's own hashing and signature code, so the two are independent implementations.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import capa
from capa.audit.bundle_files import (
    CHECKPOINT,
    EVENTS,
    MANIFEST,
    PUBLIC_KEY,
    USER_TOPIC,
    WITHHELD_REASON,
    BundleReader,
    BundleWriter,
    holds_secret,
    misread,
    readable_fields,
    withheld_line,
)
from capa.audit.checkpoints import CheckpointLog
from capa.audit.errors import SigningError, TamperDetected
from capa.audit.keys import (
    fingerprint,
    load_private_key,
    origin_of,
    public_key_from_pem,
    public_key_pem,
)
from capa.audit.leaves import leaf_of
from capa.audit.ledger import Ledger
from capa.audit.merkle import EMPTY_ROOT, TreeBuilder
from capa.audit.notes import Checkpoint, create_checkpoint, sign_checkpoint, verify_checkpoint
from capa.audit.signature_checks import fold_deferred
from capa.audit.signature_walk import SignatureFailure, SignatureWalk
from capa.audit.verification import verify_store
from capa.audit.vkeys import Verifier
from capa.audit.witness import require_cosignatures
from capa.domain.errors import InvalidInput, NotFound

__all__ = ["export_bundle", "verify_bundle"]


# -- export ----------------------------------------------------------------------------------


def export_bundle(app: Any, out: Path, key_path: Path, log_path: Path,
                  public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify the store, then write a bundle of every event and a checkpoint over exactly them.

    With the private key the checkpoint is fresh; without it (an auditor's export) the bundle
    ends at the latest checkpoint of the log, which the store's owner signed earlier.
    """
    # A bundle holds events only, so only the log is verified: caches are not evidence.
    summary = verify_store(app, public_key, log_path, caches=False)
    note: str | None = None
    size = int(summary["events"])
    try:
        private = load_private_key(key_path) if key_path.is_file() else None
    except SigningError:
        private = None
    if private is None:
        notes = CheckpointLog(log_path).notes()
        if not notes:
            raise NotFound(f"no private key at {key_path} and no checkpoint in {log_path} to "
                           "export under; run capa audit checkpoint with the store key")
        note = notes[-1].note
        size = verify_checkpoint(note, public_key).size
    writer = BundleWriter(out)
    try:
        tree, digest = TreeBuilder(), hashlib.sha256()
        refs: dict[str, str] = {}
        withheld = 0
        with writer.open(EVENTS) as stream:
            for chunk in Ledger(app).events():
                for event in chunk:
                    position = tree.size + 1
                    if position > size:
                        break
                    leaf = leaf_of(position, event)
                    tree.append(leaf)
                    head = {"position": position, "record_id": event[1], "version": event[2],
                            "event_type": event[3]}
                    shown = readable_fields(event[1], event[2], event[3], event[4], refs)
                    if holds_secret(event[3], event[4]):
                        body: dict[str, Any] = {"leaf_hash": leaf.hex(),
                                                "record": shown["record"],
                                                "type": shown["type"],
                                                "withheld": WITHHELD_REASON}
                        withheld += 1
                    else:
                        body = {"state_b64": base64.b64encode(event[4]).decode("ascii"),
                                "leaf_hash": leaf.hex(), **shown}
                    line = json.dumps({**head, **body},
                                      ensure_ascii=False).encode("utf-8") + b"\n"
                    digest.update(line)
                    stream.write(line)
        if tree.size != size:
            raise TamperDetected(f"the store changed during the export ({tree.size} events "
                                 f"read, {size} verified)")
        if note is None:
            assert private is not None
            note = sign_checkpoint(create_checkpoint(origin_of(private), size, tree.root()),
                                   private)
        elif verify_checkpoint(note, public_key).root_hash != tree.root():
            raise TamperDetected("the exported events do not have the checkpoint's root")
        files = {CHECKPOINT: note.encode("utf-8"), PUBLIC_KEY: public_key_pem(public_key)}
        for name, data in files.items():
            with writer.open(name) as stream:
                stream.write(data)
        manifest = {"event_count": size, "withheld_count": withheld,
                    "tool_version": capa.__version__,
                    "created_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                    "key_fingerprint": fingerprint(public_key), "root": tree.root().hex(),
                    "sha256": {EVENTS: digest.hexdigest(),
                               **{n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}}
        with writer.open(MANIFEST) as stream:
            stream.write(json.dumps(manifest, indent=2).encode("utf-8") + b"\n")
    finally:
        writer.close()
    return {"out": str(out), "events": size, "withheld": withheld, "root": tree.root().hex(),
            "key_fingerprint": fingerprint(public_key)}


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise InvalidInput(f"{what}: not valid JSON") from None


def _signed(note: bytes, key: Ed25519PublicKey, name: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, key)
    except SigningError as exc:
        raise TamperDetected(f"{name}: {exc}") from None


def verify_bundle(path: Path, kept: list[Path], pinned_key: Path | None,
                  pinned_vkey: Verifier | None = None,
                  witnesses: Sequence[Verifier] = ()) -> dict[str, Any]:
    """Check a bundle offline; raise TamperDetected (exit 6) or InvalidInput (exit 2).

    ``pinned_vkey`` pins the store key like ``pinned_key``; each of
    ``witnesses`` must have cosigned the bundle's checkpoint or one of the kept ones."""
    bundle = BundleReader(path)
    manifest = _load_json(bundle.read(MANIFEST), MANIFEST)
    if not (isinstance(manifest, dict) and type(manifest.get("event_count")) is int
            and isinstance(manifest.get("sha256"), dict)
            and {EVENTS, CHECKPOINT, PUBLIC_KEY} <= manifest["sha256"].keys()):
        raise InvalidInput(f"{MANIFEST}: needs event_count and sha256 of the bundle files")
    bundle.check_entries({MANIFEST, *manifest["sha256"]})
    try:
        key = public_key_from_pem(bundle.read(PUBLIC_KEY))
        if pinned_key is not None:
            pinned = public_key_from_pem(pinned_key.read_bytes())
            if fingerprint(pinned) != fingerprint(key):
                raise TamperDetected(f"{PUBLIC_KEY}: not the key given with --public-key")
    except (SigningError, OSError) as exc:
        raise InvalidInput(f"public key: {exc}") from None
    if pinned_vkey is not None and fingerprint(pinned_vkey.public_key) != fingerprint(key):
        raise TamperDetected(f"{PUBLIC_KEY}: not the key given with --vkey")
    bundle_note = bundle.read(CHECKPOINT)
    checkpoint = _signed(bundle_note, key, CHECKPOINT)
    notes = [(CHECKPOINT, bundle_note.decode("utf-8"), checkpoint.size)]
    older: list[tuple[str, Checkpoint]] = []
    for kept_path in kept:
        try:
            data = kept_path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{kept_path}: {exc.strerror}") from None
        old = _signed(data, key, str(kept_path))
        notes.append((str(kept_path), data.decode("utf-8"), old.size))
        if old.origin != checkpoint.origin:
            raise TamperDetected(f"{kept_path}: checkpoint of log {old.origin!r}, not "
                                 f"{checkpoint.origin!r}")
        older.append((str(kept_path), old))

    # Electronic signatures are checked against their signers' keys (SPEC §9.2) in this pass,
    # and their content hashes against the signed records folded in a second one (below).
    walk, forged = SignatureWalk(), None
    sizes = {checkpoint.size} | {cp.size for _, cp in older}
    tree, digest = TreeBuilder(), hashlib.sha256()
    roots: dict[int, bytes] = {0: EMPTY_ROOT}
    last_version: dict[str, int] = {}
    refs: dict[str, str] = {}
    user_records: set[str] = set()
    withheld = 0
    # A readable field that the stored bytes do not give is reported once the bytes themselves
    # are proved (below), so that a forged event is reported as such.
    altered: TamperDetected | None = None
    with bundle.open(EVENTS) as stream:
        for line_no, line in enumerate(stream, start=1):
            digest.update(line)
            event = _load_json(line, f"{EVENTS} line {line_no}")
            fields = [event.get(k) if isinstance(event, dict) else None
                      for k in ("position", "record_id", "version", "event_type", "state_b64")]
            position, record_id, version, event_type, state_b64 = fields
            hidden = isinstance(event, dict) and state_b64 is None and "withheld" in event
            if not (type(position) is int and type(version) is int
                    and isinstance(record_id, str) and isinstance(event_type, str)
                    and (isinstance(state_b64, str) or hidden)):
                raise InvalidInput(f"{EVENTS} line {line_no}: missing or mistyped event fields")
            record = refs.get(record_id, record_id)

            def failed(message: str, p: Any = position, r: str = record,
                       v: Any = version) -> TamperDetected:
                return TamperDetected(message, position=p, record=r, version=v)

            if position != line_no:
                raise failed(f"found at line {line_no}; events are missing, inserted or out of "
                             "order")
            previous = last_version.get(record_id)
            if previous is not None and version != previous + 1:
                raise failed(f"follows version {previous} of the same record")
            last_version[record_id] = version
            if "\n" in record_id or "\n" in event_type:
                raise failed("record id or event type contains a newline")
            if version == 1 and event_type.startswith(USER_TOPIC):
                user_records.add(record_id)
            elif version == 1:
                user_records.discard(record_id)
            if hidden:
                # Its bytes are not here: the leaf is taken as given, and proved only by the
                # checkpoint's root; which events may be withheld is checked first.
                if (why := withheld_line(event, user_records)) is not None:
                    raise failed(why)
                if version == 1:
                    refs[record_id] = event["record"]
                withheld += 1
                tree.append(bytes.fromhex(event["leaf_hash"]))
                if tree.size in sizes:
                    roots[tree.size] = tree.root()
                continue
            if record_id in refs and refs[record_id].startswith("USER-") and \
                    not event_type.startswith(USER_TOPIC):
                raise failed("an event of another kind in an account's history")
            try:
                state = base64.b64decode(str(state_b64), validate=True)
            except (binascii.Error, ValueError):
                raise failed("the stored bytes are not valid base64") from None
            leaf = leaf_of(position, (0, record_id, version, event_type, state))
            if "leaf_hash" in event and event["leaf_hash"] != leaf.hex():
                raise failed("the event's bytes do not match its leaf hash")
            derived = readable_fields(record_id, version, event_type, state, refs)
            if altered is None and (wrong := misread(event, derived)) is not None:
                altered = failed(wrong, r=derived["record"])
            tree.append(leaf)
            if tree.size in sizes:
                roots[tree.size] = tree.root()
            if forged is None:
                try:
                    walk.feed(position, record_id, version, event_type, state)
                except SignatureFailure as failure:
                    forged = failed(str(failure), r=failure.record)
    total = tree.size
    for name, cp in [(CHECKPOINT, checkpoint), *older]:
        if total < cp.size:
            raise TamperDetected(f"missing; {name} covers {cp.size} events, the bundle has "
                                 f"{total}", position=total + 1)
    if total > checkpoint.size:
        raise TamperDetected(f"not covered by {CHECKPOINT} ({checkpoint.size} events)",
                             position=checkpoint.size + 1)
    if roots[checkpoint.size] != checkpoint.root_hash:
        raise TamperDetected(f"{CHECKPOINT}: the root of events 1..{checkpoint.size} is not the "
                             "signed root; an event was changed, inserted, removed or reordered")
    for name, old in older:
        if roots[old.size] != old.root_hash:
            raise TamperDetected(f"{name}: events 1..{old.size} no longer have the kept root; "
                                 "the history it covers was rewritten")
    if altered is not None:
        raise altered
    if forged is not None:
        raise forged
    try:
        fold_deferred(walk, _stored_events(bundle))
    except SignatureFailure as failure:
        raise TamperDetected(str(failure), position=failure.position, record=failure.record,
                             version=failure.version) from None
    if manifest["event_count"] != total:
        raise TamperDetected(f"{MANIFEST}: event_count {manifest['event_count']}, bundle has "
                             f"{total}")
    for name, expected in sorted(manifest["sha256"].items()):
        if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/"):
            raise InvalidInput(f"{MANIFEST}: {name!r} is not a file inside the bundle")
        actual = digest.hexdigest() if name == EVENTS else hashlib.sha256(
            bundle.read(name)).hexdigest()
        if actual != expected:
            raise TamperDetected(f"{MANIFEST}: the SHA-256 of {name} does not match")
    if manifest.get("withheld_count", 0) != withheld:
        raise TamperDetected(f"{MANIFEST}: withheld_count {manifest.get('withheld_count')}, "
                             f"bundle withholds {withheld}")
    cosigned: list[dict[str, Any]] = []
    if witnesses:
        cosigned = require_cosignatures(notes, witnesses)
    return {"status": "verified", "events": total, "withheld": withheld,
            "withheld_reason": WITHHELD_REASON if withheld else None,
            "root": checkpoint.root_hash.hex(),
            "signed_at": checkpoint.time, "key_fingerprint": fingerprint(key),
            "witnesses": cosigned,
            "kept_checkpoints": [{"file": n, "size": cp.size} for n, cp in older],
            "signatures": walk.summary()}


def _stored_events(bundle: BundleReader) -> Iterator[tuple[str, int, str, bytes]]:
    """(record id, version, topic, stored bytes) of each line, once the bundle is verified."""
    with bundle.open(EVENTS) as stream:
        for line in stream:
            event = json.loads(line)
            yield (event["record_id"], event["version"], event["event_type"],
                   base64.b64decode(event["state_b64"]))
