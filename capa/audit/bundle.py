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

``verify_bundle`` makes the same checks as the standalone ``scripts/verify_bundle.py``, with
capa's own hashing and signature code, so the two are independent implementations.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import capa
from capa.audit.ledger import Ledger, leaf_of
from capa.audit.merkle import EMPTY_ROOT, TreeBuilder
from capa.audit.signing import (
    Checkpoint,
    SigningError,
    Verifier,
    create_checkpoint,
    fingerprint,
    load_private_key,
    public_key_from_pem,
    public_key_pem,
    sign_checkpoint,
    verify_checkpoint,
)
from capa.audit.verify import (
    CheckpointLog,
    TamperDetected,
    origin_of,
    verify_store,
)
from capa.domain.errors import InvalidInput, NotFound

__all__ = ["export_bundle", "extract_evidence", "verify_bundle"]

EVENTS, CHECKPOINT, PUBLIC_KEY, MANIFEST = (
    "events.jsonl", "checkpoint.txt", "public_key.pem", "manifest.json")


# -- export ----------------------------------------------------------------------------------


class _Writer:
    """Files of a bundle, written into a directory or a zip file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.zip: zipfile.ZipFile | None = None
        if out.suffix.lower() == ".zip":
            if out.exists():
                raise InvalidInput(f"{out} already exists; choose a new bundle path")
            if not out.parent.is_dir():
                raise InvalidInput(f"folder {str(out.parent)!r} does not exist")
            self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        else:
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise InvalidInput(f"{out} exists and is not an empty folder")
            out.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self.zip is not None:
            with self.zip.open(name, "w", force_zip64=True) as stream:
                yield stream
        else:
            with (self.out / name).open("wb") as stream:
                yield stream

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# -- the readable fields of a line -----------------------------------------------------------

#: The fields of a line that are there for reading; each is derived from the stored bytes (and
#: the record's first event) alone, so that a verifier can check it against the verified bytes.
READABLE = ("record", "type", "time", "actor", "data")
#: Every field a line may have.
LINE_FIELDS = frozenset(("position", "record_id", "version", "event_type", "state_b64",
                         "leaf_hash", *READABLE))
#: Stored keys left out of `data`: the time is `time`, the class version is bookkeeping, and a
#: salted password hash has no place in evidence.
_NOT_DATA = ("timestamp", "class_version", "password_hash")


# -- withheld lines ----------------------------------------------------------------------------

#: The account events that an earlier release wrote with a password hash inside: the only
#: events whose bytes a bundle may withhold.
WITHHOLDABLE = {"capa.domain.user:User.UserAdded": True,
                "capa.domain.user:User.PasswordChanged": False}  # topic -> is the first event
WITHHELD_REASON = "account event of an earlier release that holds a password hash"
WITHHELD_FIELDS = frozenset(("position", "record_id", "version", "event_type", "leaf_hash",
                             "record", "type", "withheld"))
_USER_TOPIC = "capa.domain.user:User."
_RECORD_NAMESPACE = "urn:capa:record"


def holds_secret(event_type: str, state: bytes) -> bool:
    """Whether a stored event carries a password hash (account events of an earlier release)."""
    if event_type not in WITHHOLDABLE or b'"password_hash"' not in state:
        return False
    try:
        fields = json.loads(state.decode("utf-8"))
    except ValueError:
        return False
    return isinstance(fields, dict) and bool(fields.get("password_hash"))


def user_record_hex(ref: str) -> str:
    """The stored id of the record whose ref is `ref` (as capa.domain.record.record_uuid)."""
    import uuid

    return uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, _RECORD_NAMESPACE), ref).hex


def shown_type(event_type: str) -> str:
    """The `type` a line shows: the stored topic after its ':'."""
    return event_type.partition(":")[2] or event_type


def withheld_line(line: dict[str, Any], user_records: set[str]) -> str | None:
    """Why a line without stored bytes may not be withheld, or None when it may.

    It must claim an account event that may hold a hash (UserAdded as the record's version 1,
    PasswordChanged of a record that began as an account), name the account whose id it has,
    carry a leaf hash, and nothing that reads as content: no line of a nonconformity, a CA or
    any other event can stand in the tree unread."""
    event_type, version, record = line["event_type"], line["version"], line.get("record")
    first = WITHHOLDABLE.get(event_type)
    if first is None:
        return (f"the line withholds the bytes of a {event_type.partition(':')[2] or event_type} "
                "event; only account events that hold a password hash may be withheld")
    unknown = sorted(set(line) - WITHHELD_FIELDS)
    if unknown:
        return f"the withheld line has a field {unknown[0]!r} that it cannot prove"
    if not (isinstance(line.get("withheld"), str) and isinstance(line.get("leaf_hash"), str)
            and len(line["leaf_hash"]) == 64
            and all(c in "0123456789abcdef" for c in line["leaf_hash"])):
        return "the withheld line needs a reason and the 64-hex leaf hash"
    if line.get("type", shown_type(event_type)) != shown_type(event_type):
        return "the withheld line's type is not its event type"
    if not (isinstance(record, str) and record.startswith("USER-")
            and user_record_hex(record) == line["record_id"]):
        return "the withheld line does not name the account its record id belongs to"
    if first != (version == 1) or (not first and line["record_id"] not in user_records):
        return "the withheld line is not at a place where an account event can be"
    return None


def _untyped(obj: dict[str, Any]) -> Any:
    """A time the store's JSON wrote as {"_type_": "datetime_iso", "_data_": ISO}, as UTC text."""
    if len(obj) == 2 and obj.get("_type_") == "datetime_iso" and "_data_" in obj:
        moment = dt.datetime.fromisoformat(obj["_data_"])
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.isoformat().replace("+00:00", "Z")
    return obj


def readable_fields(record_id: str, version: int, event_type: str, state: bytes,
                    refs: dict[str, str]) -> dict[str, Any]:
    """What a line of ``events.jsonl`` says for reading, from the stored event alone.

    ``record``: the ``ref`` of the record's version 1 (``refs`` notes it, in position order),
    else the stored id; ``type``: the topic after its ``:``; ``time``, ``actor``: the stored
    ``timestamp`` and ``actor``; ``data``: every stored key but ``timestamp``, ``class_version``
    and ``password_hash``. Stored times read as UTC ISO text. Bytes that are not a JSON object
    read as null ``time``, ``actor`` and ``data``. scripts/verify_bundle.py repeats this.
    """
    try:
        fields = json.loads(state.decode("utf-8"), object_hook=_untyped)
    except Exception:  # noqa: BLE001 - bytes that do not decode are shown as not decoded
        fields = None
    if not isinstance(fields, dict):
        fields = None
    elif version == 1 and isinstance(fields.get("ref"), str) and fields["ref"]:
        refs[record_id] = fields["ref"]
    return {"record": refs.get(record_id, record_id),
            "type": event_type.partition(":")[2] or event_type,
            "time": fields.get("timestamp") if fields is not None else None,
            "actor": fields.get("actor") if fields is not None else None,
            "data": None if fields is None else {k: v for k, v in fields.items()
                                                 if k not in _NOT_DATA}}


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def misread(line: dict[str, Any], derived: dict[str, Any]) -> str | None:
    """How a line's readable fields differ from those of its stored event, or None.

    A line may carry none of them (it then only proves); one that carries any carries all,
    each exactly as derived (compared as JSON, so 1, 1.0 and true differ), and nothing else."""
    unknown = sorted(set(line) - LINE_FIELDS)
    if unknown:
        return f"the line has a field {unknown[0]!r} that no stored event gives"
    if not any(name in line for name in READABLE):
        return None
    absent = object()
    for name in READABLE:
        if name not in line:
            return f"the readable field {name} is missing"
        said, stored = line[name], derived[name]
        pairs = [(name, said, stored)]
        if isinstance(said, dict) and isinstance(stored, dict):
            pairs = [(f"{name}.{key}", said.get(key, absent), stored.get(key, absent))
                     for key in sorted(set(said) | set(stored))]
        for label, a, b in pairs:
            if a is absent or b is absent or \
                    json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                reads = "is absent" if a is absent else f"reads {_shown(a)}"
                has = "has none" if b is absent else f"has {_shown(b)}"
                return (f"the readable field {label} {reads}, but the stored event {has}; the "
                        "line does not show what was stored")
    return None


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
    writer = _Writer(out)
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


# -- verification ----------------------------------------------------------------------------


class _Bundle:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            return
        if not path.is_file():
            raise NotFound(f"{path}: no such bundle")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InvalidInput(f"{path}: not a folder or a readable zip file ({exc})") from None
        entries = self.zip.namelist()
        # A zip may hold two entries of one name, and readers disagree on which one counts: a
        # bundle whose second events.jsonl is the one verified would prove nothing (SPEC §9.9).
        twice = sorted({n for n in entries if entries.count(n) > 1})
        if twice:
            raise TamperDetected(f"{path}: the zip holds {', '.join(twice)} more than once; an "
                        "ambiguous bundle is refused")
        names = set(entries)
        if EVENTS not in names:
            folders = {n.split("/", 1)[0] + "/" for n in names if n.endswith("/" + EVENTS)}
            if len(folders) == 1:
                self.prefix = folders.pop()

    def check_entries(self, expected: set[str]) -> None:
        """Refuse a zip holding anything but the bundle's own files (and their one folder)."""
        if self.zip is None:
            return
        allowed = {self.prefix + name for name in expected} | ({self.prefix} - {""})
        unexpected = sorted(set(self.zip.namelist()) - allowed)
        if unexpected:
            raise TamperDetected(f"{self.path}: unexpected entries in the zip: "
                        f"{', '.join(unexpected[:5])}; an ambiguous bundle is refused")

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            stream: IO[bytes] = (self.zip.open(self.prefix + name) if self.zip is not None
                                 else (self.path / name).open("rb"))
        except (KeyError, OSError):
            raise InvalidInput(f"{self.path}: missing or unreadable {name}") from None
        with stream:
            yield stream

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()


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
    bundle = _Bundle(path)
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

    from capa.audit.signatures import SignatureFailure, SignatureWalk, fold_deferred

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
            if version == 1 and event_type.startswith(_USER_TOPIC):
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
                    not event_type.startswith(_USER_TOPIC):
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
        from capa.audit.witness import require_cosignatures

        cosigned = require_cosignatures(notes, witnesses)
    return {"status": "verified", "events": total, "withheld": withheld,
            "withheld_reason": WITHHELD_REASON if withheld else None,
            "root": checkpoint.root_hash.hex(),
            "signed_at": checkpoint.time, "key_fingerprint": fingerprint(key),
            "witnesses": cosigned,
            "kept_checkpoints": [{"file": n, "size": cp.size} for n, cp in older],
            "signatures": walk.summary()}


def _stored_events(bundle: _Bundle) -> Iterator[tuple[str, int, str, bytes]]:
    """(record id, version, topic, stored bytes) of each line, once the bundle is verified."""
    with bundle.open(EVENTS) as stream:
        for line in stream:
            event = json.loads(line)
            yield (event["record_id"], event["version"], event["event_type"],
                   base64.b64decode(event["state_b64"]))


# -- evidence out of a bundle ------------------------------------------------------------------

#: The topics of an evidence file's event: its own, and the one earlier stores hold.
_EVIDENCE_TOPICS = ("capa.domain.evidence:EvidenceFile.EvidenceStored",
                    "capa.domain.store:EvidenceFile.EvidenceStored")
#: A name longer than this (in UTF-8 bytes) is cut: every file system takes it.
_NAME_BYTES = 200


def extract_evidence(path: Path, folder: Path) -> list[dict[str, Any]]:
    """Write the evidence files a bundle holds into `folder` (absent or empty), each under the
    name it was kept with, and return what was written. Call it only once `verify_bundle` has
    passed: the bytes are then the proved ones.

    Every file's content is checked against its SHA-256 before anything is written
    (TamperDetected, exit 6). Names come from the bundle, so they are made plain file names
    inside `folder` (`safe_name`): none can climb out of it, be absolute, or hold a NUL or a
    control character. A name kept for two different contents gets its SHA-256's first 12 hex
    digits in front; content kept under no name is written as its SHA-256."""
    bundle = _Bundle(path)
    names: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for state in _evidence_states(bundle):
        digest = state.get("sha256")
        if state["_topic"] in _EVIDENCE_TOPICS:
            content = _evidence_bytes(state)
            sizes[str(digest)] = len(content)
        for name, kept in _named_evidence(state):
            names.setdefault(kept, [])
            if name not in names[kept]:
                names[kept].append(name)
    plan: dict[str, str] = {}
    for digest in sizes:
        for name in names.get(digest, []) or [digest]:
            plan.setdefault(f"{digest}/{name}", safe_name(name, digest))
    taken: dict[str, set[str]] = {}
    for key, file_name in plan.items():
        taken.setdefault(file_name, set()).add(key.partition("/")[0])
    for key, file_name in plan.items():
        digest = key.partition("/")[0]
        if len(taken[file_name]) > 1:
            plan[key] = safe_name(f"{digest[:12]}-{file_name}", digest)
    _ready(folder)
    written: list[dict[str, Any]] = []
    done: set[str] = set()
    for state in _evidence_states(bundle):
        if state["_topic"] not in _EVIDENCE_TOPICS:
            continue
        digest, content = str(state["sha256"]), _evidence_bytes(state)
        for key, file_name in plan.items():
            if key.partition("/")[0] != digest:
                continue
            if file_name not in done:
                # Two names that read alike once made safe ("a/b", "a_b") for one content.
                _write_new(folder, file_name, content)
                done.add(file_name)
            written.append({"name": key.partition("/")[2], "file": file_name,
                            "sha256": digest, "size": len(content)})
    return written


def safe_name(name: str, digest: str) -> str:
    """`name` as one plain file name: path separators, NUL, control and format characters
    (bidirectional overrides among them) become `_`, leading dots go (no `..`, no hidden
    file), and an empty result is the SHA-256."""
    import unicodedata

    text = "".join("_" if c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl",
                                                                      "Zp") else c
                   for c in name).strip().lstrip(".").strip()
    text = text.encode("utf-8")[:_NAME_BYTES].decode("utf-8", "ignore")
    return text or digest


def _evidence_states(bundle: _Bundle) -> Iterator[dict[str, Any]]:
    """The decoded fields of every stored event that holds or names evidence."""
    with bundle.open(EVENTS) as stream:
        for line in stream:
            event = json.loads(line)
            if "state_b64" not in event or (b"evidence" not in line
                                            and b"EvidenceStored" not in line):
                continue
            try:
                state = json.loads(base64.b64decode(event["state_b64"]))
            except ValueError:
                continue
            if isinstance(state, dict):
                yield {**state, "_topic": event["event_type"]}


def _evidence_bytes(state: dict[str, Any]) -> bytes:
    digest = state.get("sha256")
    try:
        content = base64.b64decode(str(state.get("content_b64")), validate=True)
    except (binascii.Error, ValueError):
        raise TamperDetected(f"evidence {digest}: the stored content is not valid base64; "
                             "nothing was extracted") from None
    if not isinstance(digest, str) or hashlib.sha256(content).hexdigest() != digest \
            or state.get("ref") != f"EVIDENCE-{digest}":
        raise TamperDetected(f"evidence {digest}: the content does not have the SHA-256 it was "
                             "kept under; nothing was extracted")
    return content


def _named_evidence(value: Any) -> Iterator[tuple[str, str]]:
    """(name, sha256) of every evidence entry an event's fields hold, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "evidence" and isinstance(item, list):
                for entry in item:
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                            and isinstance(entry.get("sha256"), str):
                        yield entry["name"], entry["sha256"]
            else:
                yield from _named_evidence(item)
    elif isinstance(value, list):
        for item in value:
            yield from _named_evidence(item)


def _ready(folder: Path) -> None:
    """The folder to extract into: absent (made 0700) or an empty folder, never a link."""
    import os

    if folder.is_symlink():
        raise InvalidInput(f"{str(folder)!r} is a symbolic link; --extract needs a folder")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{str(folder)!r} exists and is not an empty folder")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise InvalidInput(f"cannot write into {str(folder)!r}: {exc.strerror}") from None


def _write_new(folder: Path, file_name: str, content: bytes) -> None:
    """A new 0600 file directly inside `folder`; nothing existing is followed or replaced."""
    import os

    from capa.adapters.files import private_file

    target = folder / file_name
    if target.parent != folder or file_name in ("", ".", ".."):
        raise InvalidInput(f"{file_name!r} is not a file name inside {str(folder)!r}")
    try:
        fd = private_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
    except OSError as exc:
        raise InvalidInput(f"cannot write {str(target)!r}: {exc.strerror}") from None
