#!/usr/bin/env python3
"""Verify an exported capa audit bundle offline, with the standard library and `cryptography` only.

    python verify_bundle.py BUNDLE [--checkpoint KEPT.txt]... [--public-key KEY.pem]
                            [--vkey VKEY] [--witness VKEY]...

Size: one file on purpose, so that an auditor can copy it and run it without capa installed; it
holds its own copies of the leaf encoding, the tree, the signed-note format and the signature
check (tests hold them equal to capa's), which cannot be imported from capa.audit.

BUNDLE is a directory or a .zip (optionally with one top-level folder) holding:

  events.jsonl    one JSON object per line, in position order, with at least "position" (int,
                  1-based, contiguous), "record_id", "version" (int), "event_type" and "state_b64"
                  (base64 of the exact stored bytes); an optional "leaf_hash" (hex) lets a changed
                  event be pinned to its position. The fields shown for reading, "record",
                  "type", "time", "actor" and "data", are all there or all absent, and must be
                  exactly what the stored bytes give (see readable() below); no other field.
                  A line may withhold its bytes (no "state_b64") only for an account event of
                  an earlier release that holds a password hash: it then carries "leaf_hash",
                  "record" (the account's ref), "type" and "withheld" (why), no content; its
                  leaf counts as given, so its place is proved but not its content, and the
                  output says how many lines could not be read (see withheld_line() below).
  checkpoint.txt  a C2SP signed note: "<origin>\\n<size>\\n<base64 root>\\ntime <UTC>Z\\n", a blank
                  line, then "— <key name> <base64(4-byte key id || Ed25519 signature)>" lines
                  (further extension lines, and lines of other keys, are allowed and ignored).
  public_key.pem  the store's Ed25519 public key (use --public-key to pin the one you trust).
  manifest.json   {"event_count": N, "withheld_count": W, "tool_version": "...",
                  "sha256": {"<file>": "<hex>", ...}}.

Each event becomes the RFC 6962 leaf SHA-256(0x00 || "capa-leaf-v1\\n<position>\\n<record_id>\\n
<version>\\n<event_type>\\n" || state); the root of the first <size> leaves must be the signed root.
Positions must run 1, 2, 3, ... and each record's versions must rise by one in position order.
--checkpoint checks a checkpoint kept from earlier: same signer, and the first <its size> events
still have its root, so the history it covers was not rewritten since. --vkey pins the store key
as a C2SP verifier key; --witness requires a valid C2SP tlog-cosignature/v1 by that witness on the
bundle's checkpoint or on a --checkpoint file.

Electronic signatures: every signed event's Ed25519 signature is checked against the key its
signer had at that point, each key against the administrator's endorsement (or signed password
reset) that introduced it, back to the first administrator named by the store's first event;
role and account changes against the administrator (or, for a password change, the user) who
signed them; in a store made with digital
signatures a signature without one fails. Content hashes are not recomputed (this script does
not fold records; `capa audit verify` on the store does): it checks manifest signatures only.

Exit status: 0 verified; 6 integrity failure (the first bad position, record and version where
one can be named); 2 unusable input. This file deliberately repeats the little hashing and parsing
it needs instead of importing capa, so that an auditor can read and run it on its own.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hashlib
import json
import re
import sys
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EXIT_OK, EXIT_UNUSABLE, EXIT_FAILED = 0, 2, 6
EVENTS, CHECKPOINT, PUBLIC_KEY, MANIFEST = (
    "events.jsonl",
    "checkpoint.txt",
    "public_key.pem",
    "manifest.json",
)


class Unusable(Exception):
    """The input cannot be checked at all (exit 2)."""


class Failed(Exception):
    """The bundle was checked and is not intact (exit 6)."""


# --- RFC 6962 hashing, as in capa/audit/leaves.py and merkle.py ---------------------------------


def leaf_hash(position: int, record_id: str, version: int, event_type: str, state: bytes) -> bytes:
    header = f"capa-leaf-v1\n{position}\n{record_id}\n{version}\n{event_type}\n".encode()
    return hashlib.sha256(b"\x00" + header + state).digest()


class Tree:
    """Roots of the perfect subtrees so far (largest first): O(log n) memory for any log."""

    def __init__(self) -> None:
        self.size = 0
        self.frontier: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        n, node = self.size, leaf
        while n & 1:
            node = hashlib.sha256(b"\x01" + self.frontier.pop() + node).digest()
            n >>= 1
        self.frontier.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.frontier:
            return hashlib.sha256(b"").digest()
        node = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node


# --- checkpoints (C2SP signed note), as in capa/audit/notes.py -----------------------------------


class Checkpoint(NamedTuple):
    origin: str
    size: int
    root: bytes
    time: str
    text: str
    signatures: list[tuple[str, bytes]]  # (key name, key id || signature)


def b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None


def parse_checkpoint(data: bytes) -> Checkpoint:
    """Parse strictly; raises ValueError saying what is wrong."""
    note = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if re.search(r"[\x00-\x09\x0b-\x1f]", note) or not note.endswith("\n"):
        raise ValueError("control characters or no final newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("no blank line before the signatures")
    text, sig_lines = note[: split + 1], note[split + 2 : -1].split("\n")
    lines = text[:-1].split("\n")
    # C2SP tlog-checkpoint: origin, size, root, then optional non-empty extension lines, the
    # first of which capa writes as "time <UTC>Z"; others are not interpreted.
    if len(lines) < 3 or not all(lines):
        raise ValueError("text must be origin, size and root lines, then non-empty lines")
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1], re.ASCII):
        raise ValueError(f"bad tree size {lines[1]!r}")
    root = b64(lines[2], "root hash")
    if len(root) != 32 or base64.b64encode(root).decode() != lines[2]:
        raise ValueError("bad root hash")
    time = lines[3][5:] if len(lines) > 3 and lines[3].startswith("time ") else ""
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", time, re.A):
        time = "(no time line)"
    signatures = []
    for line in sig_lines:
        match = re.fullmatch(r"\u2014 ([^\s+]+) (\S+)", line)
        if not match:
            raise ValueError(f"bad signature line {line[:30]!r}")
        signatures.append((match[1], b64(match[2], "signature")))
    return Checkpoint(lines[0], int(lines[1]), root, time, text, signatures)


def check_signature(checkpoint: Checkpoint, key: Ed25519PublicKey, name: str) -> None:
    raw = key.public_bytes_raw()
    verified = False
    for key_name, blob in checkpoint.signatures:
        key_id = hashlib.sha256(key_name.encode() + b"\n\x01" + raw).digest()[:4]
        if blob[:4] != key_id:
            continue  # another signer (a witness): ignored, as signed-note prescribes
        try:
            key.verify(blob[4:], checkpoint.text.encode())
        except InvalidSignature:
            raise Failed(f"{name}: the signature by {key_name} is forged or damaged") from None
        verified = True
    if not verified:
        fingerprint = hashlib.sha256(raw).hexdigest()
        raise Failed(f"{name}: not signed by the public key (fingerprint {fingerprint})")


# --- C2SP verifier keys and witness cosignatures (c2sp.org/signed-note, tlog-cosignature) ---------


def parse_vkey(text: str, kind: int, option: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """A vkey "name+hex(key id)+base64(type || key)" (or a file holding one) of type ``kind``:
    0x01 for the store's key, 0x04 for a witness. The key id must be what name and key give."""
    if Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    parts = text.strip().split("+", 2)  # the base64 part may itself contain '+'
    try:
        name, kid, blob = parts[0], bytes.fromhex(parts[1]), b64(parts[2], "key")
        key = Ed25519PublicKey.from_public_bytes(blob[1:])
    except (IndexError, ValueError):
        raise Unusable(f"{option}: not a verifier key name+keyid+base64(type || key)") from None
    if len(blob) != 33 or blob[0] != kind or len(kid) != 4 or not re.fullmatch(r"[^\s+]+", name):
        raise Unusable(f"{option}: not a verifier key of type 0x{kind:02x}")
    if hashlib.sha256(name.encode() + b"\n" + blob).digest()[:4] != kid:
        raise Unusable(f"{option}: the key id does not belong to that name and key")
    return name, kid, key


def cosigned(checkpoint: Checkpoint, witness: tuple[str, bytes, Ed25519PublicKey],
             where: str) -> bool:
    """Whether the checkpoint carries the witness's tlog-cosignature/v1: an Ed25519 signature
    over "cosignature/v1\\ntime <unix>\\n" + the note text, after an 8-byte timestamp."""
    name, kid, key = witness
    found = False
    for key_name, blob in checkpoint.signatures:
        if key_name != name or blob[:4] != kid:
            continue  # another signer: ignored
        message = f"cosignature/v1\ntime {int.from_bytes(blob[4:12], 'big')}\n{checkpoint.text}"
        try:
            if len(blob) != 4 + 8 + 64:
                raise InvalidSignature
            key.verify(blob[12:], message.encode())
        except InvalidSignature:
            raise Failed(f"{where}: the cosignature by {name} is forged or damaged") from None
        found = True
    return found


# --- bundle access --------------------------------------------------------------------------------


class Bundle:
    """The four files of a bundle, in a directory or a zip file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            return
        if not path.is_file():
            raise Unusable(f"{path}: no such file or directory")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise Unusable(f"{path}: not a directory or a readable zip file ({exc})") from None
        entries = self.zip.namelist()
        # A zip may hold two entries of one name, and readers disagree on which one counts: a
        # bundle whose second events.jsonl is the one verified would prove nothing (SPEC §9.9).
        twice = sorted({n for n in entries if entries.count(n) > 1})
        if twice:
            raise Failed(f"{path}: the zip holds {', '.join(twice)} more than once; an "
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
            raise Failed(f"{self.path}: unexpected entries in the zip: "
                        f"{', '.join(unexpected[:5])}; an ambiguous bundle is refused")

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            if self.zip is not None:
                stream: IO[bytes] = self.zip.open(self.prefix + name)
            else:
                stream = (self.path / name).open("rb")
        except (KeyError, OSError):
            raise Unusable(f"{self.path}: missing or unreadable {name}") from None
        with stream:
            yield stream

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()


def read_json(data: bytes, name: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise Unusable(f"{name}: not valid JSON") from None


def load_public_key(data: bytes, name: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise Unusable(f"{name}: not a PEM Ed25519 public key")
    return key


# --- the readable fields, as capa/audit/bundle_files.py derives them ------------------------------

READABLE = ("record", "type", "time", "actor", "data")
LINE_FIELDS = {"position", "record_id", "version", "event_type", "state_b64", "leaf_hash"}
LINE_FIELDS.update(READABLE)


def utc_text(obj: dict) -> object:
    """{"_type_": "datetime_iso", "_data_": ISO} (how the store writes a time) as UTC text."""
    if len(obj) == 2 and obj.get("_type_") == "datetime_iso" and "_data_" in obj:
        moment = datetime.datetime.fromisoformat(obj["_data_"])
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.UTC)
        return moment.isoformat().replace("+00:00", "Z")
    return obj


def readable(record_id: str, version: int, event_type: str, state: bytes, refs: dict) -> dict:
    """record: the "ref" of the record's version 1, else record_id; type: the event type after
    its ":"; time, actor: the stored "timestamp" and "actor"; data: every stored key but
    timestamp, class_version and password_hash. Bytes that are not a JSON object give nulls."""
    try:
        fields = json.loads(state.decode("utf-8"), object_hook=utc_text)
    except Exception:
        fields = None
    if not isinstance(fields, dict):
        fields = None
    elif version == 1 and isinstance(fields.get("ref"), str) and fields["ref"]:
        refs[record_id] = fields["ref"]
    hidden = ("timestamp", "class_version", "password_hash")
    return {
        "record": refs.get(record_id, record_id),
        "type": event_type.partition(":")[2] or event_type,
        "time": None if fields is None else fields.get("timestamp"),
        "actor": None if fields is None else fields.get("actor"),
        "data": None if fields is None else {k: v for k, v in fields.items() if k not in hidden},
    }


def as_json(value: object) -> str:
    return json.dumps(value, sort_keys=True)  # so that 1, 1.0 and true differ


def misread(line: dict, derived: dict) -> str | None:
    """How the line's readable fields differ from what its stored bytes give, or None."""
    unknown = sorted(set(line) - LINE_FIELDS)
    if unknown:
        return f"the line has a field {unknown[0]!r} that no stored event gives"
    if not any(name in line for name in READABLE):
        return None
    absent = object()
    for name in READABLE:
        if name not in line:
            return f"the readable field {name} is missing"
        pairs = [(name, line[name], derived[name])]
        if isinstance(line[name], dict) and isinstance(derived[name], dict):
            keys = sorted(set(line[name]) | set(derived[name]))
            pairs = [(f"{name}.{k}", line[name].get(k, absent), derived[name].get(k, absent))
                     for k in keys]
        for label, said, stored in pairs:
            if said is absent or stored is absent or as_json(said) != as_json(stored):
                reads = "is absent" if said is absent else f"reads {short(as_json(said))}"
                has = "has none" if stored is absent else f"has {short(as_json(stored))}"
                return (
                    f"the readable field {label} {reads}, but the stored event {has}; "
                    "the line does not show what was stored"
                )
    return None


# --- withheld lines, as capa/audit/bundle_files.py allows them -----------------------------------

# The only events whose bytes may be withheld -> whether the event is a record's first.
WITHHOLDABLE = {
    "capa.domain.user:User.UserAdded": True,
    "capa.domain.user:User.PasswordChanged": False,
}
WITHHELD_FIELDS = {"position", "record_id", "version", "event_type", "leaf_hash", "record"}
WITHHELD_FIELDS.update(("type", "withheld"))
USER_TOPIC = "capa.domain.user:User."
RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:capa:record")


def withheld_line(line: dict, user_records: set[str]) -> str | None:
    """Why a line without bytes may not be withheld, or None: it must claim an account event that
    may hold a hash (UserAdded as version 1, PasswordChanged of a record begun as an account),
    name the account its record id belongs to (uuid5 of the ref), and show nothing readable."""
    first = WITHHOLDABLE.get(line["event_type"])
    if first is None:
        kind = line["event_type"].partition(":")[2] or line["event_type"]
        return (f"the line withholds the bytes of a {kind} event; only account events that hold "
                "a password hash may be withheld")
    unknown = sorted(set(line) - WITHHELD_FIELDS)
    if unknown:
        return f"the withheld line has a field {unknown[0]!r} that it cannot prove"
    leaf = line.get("leaf_hash")
    if not (isinstance(line.get("withheld"), str) and isinstance(leaf, str)
            and re.fullmatch(r"[0-9a-f]{64}", leaf)):
        return "the withheld line needs a reason and the 64-hex leaf hash"
    shown = line["event_type"].partition(":")[2] or line["event_type"]
    if line.get("type", shown) != shown:
        return "the withheld line's type is not its event type"
    record = line.get("record")
    if not (isinstance(record, str) and record.startswith("USER-")
            and uuid.uuid5(RECORD_NAMESPACE, record).hex == line["record_id"]):
        return "the withheld line does not name the account its record id belongs to"
    if first != (line["version"] == 1) or (not first and line["record_id"] not in user_records):
        return "the withheld line is not at a place where an account event can be"
    return None


def short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# --- electronic signatures (SPEC §9.2), as in capa/audit/signatures.py ---------------------------
#
# Account events are walked in log order: the store's first event names the first administrator
# and their Ed25519 public key; every later key (UserAdded "public_key") needs an "endorsement"
# signed by a user who was an active administrator with a trusted key at that point. Each
# signature dict with a "signature" is an Ed25519 signature by its signer's key over the manifest
# below. Content hashes are NOT recomputed here (that needs capa's records): this checks the
# manifest signatures only, and says so in its output.

SCHEME = "ed25519-v1"
#: The credential a service account's UserAdded names (capa.domain.user.SERVICE_CREDENTIAL).
SERVICE_CREDENTIAL = "service-account:no-password"
RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:capa:record")


def canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def same_time(signed_at: object, stored: object) -> bool:
    """Whether a signature's UTC time is its event's stored time ({"_data_": ISO time})."""
    try:
        return datetime.datetime.fromisoformat(str(signed_at).replace("Z", "+00:00")) == \
            datetime.datetime.fromisoformat(str(stored["_data_"]))  # type: ignore[index]
    except (ValueError, TypeError, KeyError):
        return False


def ed25519_valid(key: Ed25519PublicKey, signature: object, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(str(signature), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def ed25519_key(value: object) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return None


def key_name(value: object) -> str:
    try:
        return hashlib.sha256(base64.b64decode(str(value), validate=True)).hexdigest()[:16]
    except (binascii.Error, ValueError):
        return ""


#: The account changes signed with the canonical statement above: event name -> action.
ACCOUNT_ACTIONS = {"UserDeactivated": "deactivate", "AccountUnlocked": "unlock",
                   "PasswordChanged": "passwd"}


class Signatures:
    """Feed every event in position order; raises Failed at the first bad signature or key."""

    def __init__(self) -> None:
        self.digital_store = False
        self.anchor: dict[str, Any] | None = None
        self.accounts: dict[str, dict[str, Any]] = {}  # user id -> name, roles, active, key, key id
        self.owners: dict[str, str] = {}  # account record id -> user id
        self.refs: dict[str, str] = {}
        self.digital = self.attested = 0
        self.roles_signed = self.roles_legacy = 0
        self.changes_signed = self.changes_legacy = 0
        self.services_signed = self.services_legacy = 0

    def feed(self, where: str, position: int, record_id: str, version: int, event_type: str,
             state: bytes) -> None:
        try:
            data = json.loads(state.decode("utf-8"))
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if version == 1 and isinstance(data.get("ref"), str):
            self.refs.setdefault(record_id, data["ref"])
        if event_type == "capa.domain.store:StoreRecord.StoreInitialised":
            if position != 1:
                raise Failed(f"{where}: a second store record")
            signing = data.get("signing")
            self.digital_store = isinstance(signing, dict) and signing.get("scheme") == SCHEME
            self.anchor = signing if self.digital_store else None
        elif event_type.startswith("capa.domain.user:User."):
            self.account(where, event_type.partition(":User.")[2], record_id, version, data)
        if isinstance(data.get("signature"), dict):
            self.signature(where, record_id, version, data, data["signature"])

    def account(self, where: str, name: str, record_id: str, version: int,
                data: dict[str, Any]) -> None:
        if name == "UserAdded":
            user = str(data.get("user_id"))
            if version != 1 or uuid.uuid5(RECORD_NAMESPACE, f"USER-{user}").hex != record_id \
                    or user in self.accounts:
                raise Failed(f"{where}: an account record for {user} that is not that user's own")
            roles = data.get("roles") or []
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise Failed(f"{where}: the roles of {user} are malformed")
            account: dict[str, Any] = {"name": data.get("full_name"),
                                       "roles": set(roles),
                                       "active": True, "key": None, "key_id": None,
                                       "locked": False}
            public = data.get("public_key")
            if data.get("credential") == SERVICE_CREDENTIAL:
                account["service"] = True
                self.service_account(where, user, data.get("full_name"), roles, public,
                                     data.get("endorsement"))
            elif public is not None:
                account["key"] = self.trusted(where, user, data.get("full_name"), roles,
                                              public, data.get("endorsement"))
                account["key_id"] = key_name(public)
            elif self.digital_store:
                raise Failed(f"{where}: {user} is added with no signing key and no "
                             "administrator's endorsement, which this store requires")
            self.accounts[user] = account
            self.owners[record_id] = user
            return
        owner = self.accounts.get(self.owners.get(record_id, ""))
        if owner is None:
            return
        if name in ("RoleGranted", "RoleRevoked"):
            role = str(data.get("role"))
            self.role_change(where, self.owners[record_id], name == "RoleGranted", role,
                             version, data)
            if name == "RoleGranted":
                owner["roles"].add(role)
            else:
                owner["roles"].discard(role)
        elif name in ("ApiTokenIssued", "ApiTokenRevoked"):
            self.token_change(where, self.owners[record_id], owner, name == "ApiTokenIssued",
                              version, data)
        elif name == "AccountLocked":
            owner["locked"] = True  # written by the failed check itself: never signed
        elif name == "PasswordReset":
            if owner.get("service"):
                raise Failed(f"{where}: the password reset of {self.owners[record_id]}, a "
                             "service account, which has no password")
            key = self.reset(where, self.owners[record_id], version, data)
            owner["locked"] = False
            if key is not None:
                owner["key"], owner["key_id"] = key, key_name(data.get("public_key"))
        elif name in ACCOUNT_ACTIONS:
            action = ACCOUNT_ACTIONS[name]
            self.account_change(where, self.owners[record_id], action, version, data)
            if action == "deactivate":
                owner["active"] = False
            elif action == "unlock":
                owner["locked"] = False
            elif data.get("public_key") is not None:
                # A password change gives the user a new key, signed for with the old one.
                key = ed25519_key(data.get("public_key"))
                if key is None:
                    raise Failed(f"{where}: the password change of {self.owners[record_id]} "
                                 "gives no Ed25519 key")
                owner["key"], owner["key_id"] = key, key_name(data.get("public_key"))

    def admin_at(self, where: str, what: str, admin_id: str, *,
                 admin: bool = True) -> dict[str, Any]:
        """The account that signed, if it was an active administrator (with `admin`; else an
        active user) whose key was trusted at that point."""
        signer = self.accounts.get(admin_id)
        if not signer or signer["key"] is None or not signer["active"] \
                or (admin and "admin" not in signer["roles"]):
            raise Failed(f"{where}: {what} is signed by {admin_id}, who was not "
                         f"{'an administrator' if admin else 'an active user'} with a trusted "
                         "key at that point")
        return signer

    def signer_of(self, where: str, what: str, signer_id: str, auth: dict[str, Any],
                  data: dict[str, Any], *, admin: bool = True) -> dict[str, Any]:
        """`admin_at`, and the signature names that account's key, the event's actor and the
        event's time."""
        signer = self.admin_at(where, what, signer_id, admin=admin)
        if auth.get("key_id") != signer["key_id"] or data.get("actor") != signer_id \
                or not same_time(auth.get("signed_at"), data.get("timestamp")):
            raise Failed(f"{where}: {what} does not match its event (key, signer or time)")
        return signer

    def service_account(self, where: str, user: str, name: object, roles: list[str],
                        public: object, endorsement: object) -> None:
        """A service account: reporter or quality, no key, signed by an administrator trusted
        at that point, except in a store made before digital signatures (counted as legacy)."""
        what = f"the service account {user}"
        if public is not None or not set(roles) <= {"reporter", "quality"}:
            raise Failed(f"{where}: {what} holds a key or a role other than reporter and quality")
        if endorsement is None:
            if self.digital_store:
                raise Failed(f"{where}: {what} is signed by no administrator, which this store "
                             "requires")
            self.services_legacy += 1
            return
        if not isinstance(endorsement, dict):
            raise Failed(f"{where}: {what} carries a malformed signature")
        admin_id = str(endorsement.get("admin"))
        admin = self.admin_at(where, what, admin_id)
        message = canonical({"purpose": "capa-service-account-v1", "user_id": user,
                             "full_name": name, "roles": sorted(roles),
                             "endorsed_at": str(endorsement.get("endorsed_at")),
                             "admin": admin_id})
        if endorsement.get("key_id") != admin["key_id"] \
                or not ed25519_valid(admin["key"], endorsement.get("signature"), message):
            raise Failed(f"{where}: the signature of {admin_id} on {what} is forged")
        self.services_signed += 1

    def token_change(self, where: str, user: str, owner: dict[str, Any], issue: bool,
                     version: int, data: dict[str, Any]) -> None:
        """An API token is issued or revoked only for a service account, signed by an
        administrator trusted at that point, except in a store made before digital signatures
        (counted as legacy)."""
        token_id = str(data.get("token_id"))
        what = f"the {'issue' if issue else 'revocation'} of the API token {token_id} of {user}"
        if not owner.get("service"):
            raise Failed(f"{where}: {what}, which is not a service account")
        auth = data.get("authorisation")
        if auth is None:
            if self.digital_store:
                raise Failed(f"{where}: {what} is signed by no administrator, which this store "
                             "requires")
            self.services_legacy += 1
            return
        if not isinstance(auth, dict):
            raise Failed(f"{where}: {what} carries a malformed signature")
        admin_id = str(auth.get("admin"))
        admin = self.signer_of(where, what, admin_id, auth, data)
        message = canonical({"purpose": "capa-api-token-v1", "user_id": user,
                             "change": "issue" if issue else "revoke", "token_id": token_id,
                             "token_sha256": str(data.get("token_sha256")) if issue else None,
                             "version": version, "signed_at": str(auth.get("signed_at")),
                             "admin": admin_id})
        if not ed25519_valid(admin["key"], auth.get("signature"), message):
            raise Failed(f"{where}: the signature of {admin_id} on {what} is forged or was "
                         "copied from another event")
        self.services_signed += 1

    def account_change(self, where: str, user: str, action: str, version: int,
                       data: dict[str, Any]) -> None:
        """A deactivation or unlock must be signed by an administrator trusted at that point, a
        password change by its own user's key (binding the new credential), except in a store
        made before digital signatures (counted as legacy)."""
        what = {"deactivate": f"the deactivation of {user}", "unlock": f"the unlock of {user}",
                "passwd": f"the password change of {user}"}[action]
        own = action == "passwd"
        auth = data.get("authorisation")
        if auth is None:
            if self.digital_store:
                raise Failed(f"{where}: {what} is signed by no "
                             f"{'key of that user' if own else 'administrator'}, which this "
                             "store requires")
            self.changes_legacy += 1
            return
        if not isinstance(auth, dict):
            raise Failed(f"{where}: {what} carries a malformed signature")
        signer_id = str(auth.get("signer"))
        if own and signer_id != user:
            raise Failed(f"{where}: {what} is signed by {signer_id}, not by that user")
        signer = self.signer_of(where, what, signer_id, auth, data, admin=not own)
        credential = data.get("credential") if own else None
        signed = {"purpose": "capa-account-change-v1", "user_id": user, "action": action,
                  "version": version, "signed_at": str(auth.get("signed_at")),
                  "signer": signer_id,
                  "credential": None if credential is None else str(credential)}
        if own and data.get("public_key") is not None:
            signed["public_key"] = str(data.get("public_key"))
        message = canonical(signed)
        if not ed25519_valid(signer["key"], auth.get("signature"), message):
            raise Failed(f"{where}: the signature of {signer_id} on {what} is forged or was "
                         "copied from another event")
        self.changes_signed += 1

    def reset(self, where: str, user: str, version: int,
              data: dict[str, Any]) -> Ed25519PublicKey | None:
        """A password reset must be signed by an administrator trusted at that point, over the
        user's new key, credential and reason; the key it names is then the user's. Unsigned and
        keyless only in a store made before digital signatures (counted as legacy)."""
        what = f"the password reset of {user}"
        auth, public = data.get("authorisation"), data.get("public_key")
        if auth is None:
            if self.digital_store or public is not None:
                raise Failed(f"{where}: {what} is signed by no administrator, which this store "
                             "requires")
            self.changes_legacy += 1
            return None
        if not isinstance(auth, dict):
            raise Failed(f"{where}: {what} carries a malformed signature")
        signer_id = str(auth.get("signer"))
        signer = self.signer_of(where, what, signer_id, auth, data)
        key = ed25519_key(public) if public is not None else None
        if key is None and (public is not None or self.digital_store):
            raise Failed(f"{where}: {what} gives {user} no Ed25519 key")
        message = canonical({"purpose": "capa-password-reset-v1", "user_id": user,
                             "version": version, "public_key": public,
                             "credential": str(data.get("credential")),
                             "reason": str(data.get("reason")),
                             "signed_at": str(auth.get("signed_at")), "admin": signer_id})
        if not ed25519_valid(signer["key"], auth.get("signature"), message):
            raise Failed(f"{where}: the signature of {signer_id} on {what} is forged or was "
                         "copied from another event")
        self.changes_signed += 1
        return key

    def role_change(self, where: str, user: str, granted: bool, role: str, version: int,
                    data: dict[str, Any]) -> None:
        """A role change must be signed by an administrator trusted at that point, except in a
        store made before digital signatures (counted as legacy)."""
        change = "grant" if granted else "revoke"
        what = f"the {change} of the role {role} {'to' if granted else 'from'} {user}"
        auth = data.get("authorisation")
        if auth is None:
            if self.digital_store:
                raise Failed(f"{where}: {what} is signed by no administrator, which this store "
                             "requires")
            self.roles_legacy += 1
            return
        if not isinstance(auth, dict):
            raise Failed(f"{where}: {what} carries a malformed signature")
        admin_id = str(auth.get("admin"))
        admin = self.signer_of(where, what, admin_id, auth, data)
        message = canonical({"purpose": "capa-role-change-v1", "user_id": user,
                             "change": change, "role": role, "version": version,
                             "signed_at": str(auth.get("signed_at")), "admin": admin_id})
        if not ed25519_valid(admin["key"], auth.get("signature"), message):
            raise Failed(f"{where}: the signature of {admin_id} on {what} is forged or was "
                         "copied from another event")
        self.roles_signed += 1

    def trusted(self, where: str, user: str, full_name: object, roles: list[str],
                public: object, endorsement: object) -> Ed25519PublicKey:
        key = ed25519_key(public)
        if key is None:
            raise Failed(f"{where}: the public key of {user} is not an Ed25519 key")
        if endorsement is None:
            anchor = self.anchor
            if anchor and not self.accounts and anchor.get("admin") == user \
                    and anchor.get("public_key") == public:
                return key
            raise Failed(f"{where}: the key of {user} is endorsed by no administrator")
        if not isinstance(endorsement, dict):
            raise Failed(f"{where}: the key endorsement of {user} is malformed")
        admin_id = str(endorsement.get("admin"))
        admin = self.accounts.get(admin_id)
        if not admin or admin["key"] is None or not admin["active"] \
                or "admin" not in admin["roles"]:
            raise Failed(f"{where}: the key of {user} is endorsed by {admin_id}, who was not an "
                         "administrator with a trusted key at that point")
        message = canonical({"purpose": "capa-user-key-v2", "user_id": user,
                             "full_name": full_name, "roles": sorted(roles),
                             "public_key": public,
                             "endorsed_at": str(endorsement.get("endorsed_at")),
                             "admin": admin_id})
        if not ed25519_valid(admin["key"], endorsement.get("signature"), message):
            raise Failed(f"{where}: the endorsement of the key of {user} by {admin_id} is forged")
        return key

    def signature(self, where: str, record_id: str, version: int, data: dict[str, Any],
                  sig: dict[str, Any]) -> None:
        user, meaning = str(sig.get("user_id")), sig.get("meaning")
        if not sig.get("signature"):
            if self.digital_store:
                raise Failed(f"{where}: the {meaning} signature of {user} has no digital "
                             "signature, which this store requires")
            self.attested += 1
            return
        account = self.accounts.get(user)
        if not account or account["key"] is None or not account["active"]:
            raise Failed(f"{where}: the {meaning} signature names {user}, who has no trusted "
                         "key at that point")
        if (sig.get("algorithm") != "Ed25519" or sig.get("key_id") != account["key_id"]
                or data.get("actor") != user or sig.get("signed_version") != version - 1
                or sig.get("full_name") != account["name"]
                or not same_time(sig.get("signed_at"), data.get("timestamp"))):
            raise Failed(f"{where}: the {meaning} signature of {user} does not match its event "
                         "(key, signer, version, printed name or time)")
        message = canonical({"purpose": "capa-signature-v1",
                             "record": self.refs.get(record_id, record_id),
                             "version": version - 1,
                             "content_sha256": str(sig.get("content_sha256")),
                             "meaning": str(meaning), "signed_at": str(sig.get("signed_at")),
                             "user_id": user, "full_name": account["name"]})
        if not ed25519_valid(account["key"], sig.get("signature"), message):
            raise Failed(f"{where}: the {meaning} signature of {user} does not verify with that "
                         "user's key: it is forged or was copied from another event")
        self.digital += 1


# --- the checks -----------------------------------------------------------------------------------


class EventsSummary(NamedTuple):
    total: int
    roots: dict[int, bytes]  # the root at each size a checkpoint needs
    first_uncovered: str  # the event after the bundle checkpoint's size, if any
    sha256: str
    misread: str  # the first line whose readable fields are not what its stored bytes give
    withheld: int  # lines whose bytes the bundle does not carry (account events holding a hash)
    forged: str  # the first bad electronic signature or key endorsement
    signatures: Signatures


def check_events(stream: IO[bytes], sizes: set[int], covered: int) -> EventsSummary:
    tree, digest = Tree(), hashlib.sha256()
    roots = {0: tree.root()} if 0 in sizes else {}
    first_uncovered = ""
    last_version: dict[str, int] = {}
    refs: dict[str, str] = {}
    user_records: set[str] = set()
    withheld = 0
    first_misread = first_forged = ""
    signatures = Signatures()
    for line_no, line in enumerate(stream, start=1):
        digest.update(line)
        event = read_json(line, f"{EVENTS} line {line_no}")
        if not isinstance(event, dict):
            raise Unusable(f"{EVENTS} line {line_no}: not a JSON object")
        position, record_id = event.get("position"), event.get("record_id")
        version, event_type, state_b64 = (
            event.get(k) for k in ("version", "event_type", "state_b64")
        )
        hidden = state_b64 is None and "withheld" in event
        if not (
            type(position) is int
            and type(version) is int
            and isinstance(record_id, str)
            and isinstance(event_type, str)
            and (isinstance(state_b64, str) or hidden)
        ):
            raise Unusable(f"{EVENTS} line {line_no}: missing or mistyped event fields")
        where = f"position {position} (record {record_id} version {version})"
        if line_no == covered + 1:
            first_uncovered = where
        if position != line_no:
            raise Failed(
                f"position {line_no}: found {where} instead; "
                "events are missing, inserted or out of order"
            )
        previous = last_version.get(record_id)
        if previous is not None and version != previous + 1:
            raise Failed(f"{where}: follows version {previous} of the same record")
        last_version[record_id] = version
        if "\n" in record_id or "\n" in event_type:
            raise Failed(f"{where}: record id or event type contains a newline")
        if version == 1:
            (user_records.add if event_type.startswith(USER_TOPIC) else user_records.discard)(
                record_id
            )
        if hidden:
            # No bytes to hash: the leaf is taken as given and proved only by the signed root.
            why = withheld_line(event, user_records)
            if why:
                raise Failed(f"{where}: {why}")
            if version == 1:
                refs[record_id] = event["record"]
            withheld += 1
            tree.append(bytes.fromhex(event["leaf_hash"]))
            if tree.size in sizes:
                roots[tree.size] = tree.root()
            continue
        if refs.get(record_id, "").startswith("USER-") and not event_type.startswith(USER_TOPIC):
            raise Failed(f"{where}: an event of another kind in an account's history")
        try:
            state = b64(state_b64, "state")
        except ValueError as exc:
            raise Failed(f"{where}: {exc}") from None
        leaf = leaf_hash(position, record_id, version, event_type, state)
        if "leaf_hash" in event and event["leaf_hash"] != leaf.hex():
            raise Failed(f"{where}: the event's bytes do not match its leaf hash")
        wrong = misread(event, readable(record_id, version, event_type, state, refs))
        if wrong and not first_misread:
            first_misread = f"{where}: {wrong}"
        tree.append(leaf)
        if tree.size in sizes:
            roots[tree.size] = tree.root()
        if not first_forged:
            try:
                record = refs.get(record_id, record_id)
                signatures.feed(f"position {position} (record {record} version {version})",
                                position, record_id, version, event_type, state)
            except Failed as exc:
                first_forged = str(exc)
    return EventsSummary(tree.size, roots, first_uncovered, digest.hexdigest(), first_misread,
                         withheld, first_forged, signatures)


def verify(path: Path, kept: list[Path], pinned_key: Path | None, vkey: str | None = None,
           witness_vkeys: tuple[str, ...] = ()) -> str:
    pinned_vkey = parse_vkey(vkey, 0x01, "--vkey") if vkey else None
    witnesses = [parse_vkey(text, 0x04, "--witness") for text in witness_vkeys]
    bundle = Bundle(path)
    manifest = read_json(bundle.read(MANIFEST), MANIFEST)
    if not (
        isinstance(manifest, dict)
        and type(manifest.get("event_count")) is int
        and isinstance(manifest.get("tool_version"), str)
        and isinstance(manifest.get("sha256"), dict)
        and {EVENTS, CHECKPOINT, PUBLIC_KEY} <= manifest["sha256"].keys()
    ):
        raise Unusable(
            f"{MANIFEST}: needs event_count, tool_version and sha256 of the bundle files"
        )
    for name in manifest["sha256"]:
        if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/"):
            raise Unusable(f"{MANIFEST}: {name!r} is not a file inside the bundle")
    bundle.check_entries({MANIFEST, *manifest["sha256"]})

    bundle_key_pem = bundle.read(PUBLIC_KEY)
    key = load_public_key(bundle_key_pem, PUBLIC_KEY)
    if pinned_key is not None:
        try:
            pinned = load_public_key(pinned_key.read_bytes(), str(pinned_key))
        except OSError as exc:
            raise Unusable(f"{pinned_key}: {exc.strerror}") from None
        if pinned.public_bytes_raw() != key.public_bytes_raw():
            raise Failed(f"{PUBLIC_KEY}: not the key given with --public-key")
    if pinned_vkey is not None and pinned_vkey[2].public_bytes_raw() != key.public_bytes_raw():
        raise Failed(f"{PUBLIC_KEY}: not the key given with --vkey")

    try:
        checkpoint = parse_checkpoint(bundle.read(CHECKPOINT))
    except ValueError as exc:
        raise Failed(f"{CHECKPOINT}: malformed checkpoint: {exc}") from None
    check_signature(checkpoint, key, CHECKPOINT)
    older: list[tuple[str, Checkpoint]] = []
    for kept_path in kept:
        try:
            old = parse_checkpoint(kept_path.read_bytes())
        except OSError as exc:
            raise Unusable(f"{kept_path}: {exc.strerror}") from None
        except ValueError as exc:
            raise Unusable(f"{kept_path}: malformed checkpoint: {exc}") from None
        check_signature(old, key, str(kept_path))
        if old.origin != checkpoint.origin:
            raise Failed(
                f"{kept_path}: checkpoint of log {old.origin!r}, not {checkpoint.origin!r}"
            )
        older.append((str(kept_path), old))

    with bundle.open(EVENTS) as stream:
        sizes = {checkpoint.size} | {old.size for _, old in older}
        events = check_events(stream, sizes, checkpoint.size)

    for name, cp in [(CHECKPOINT, checkpoint), *older]:
        if events.total < cp.size:
            raise Failed(
                f"position {events.total + 1}: missing; {name} covers {cp.size} events, "
                f"the bundle has {events.total}"
            )
    if events.total > checkpoint.size:
        raise Failed(
            f"{events.first_uncovered}: not covered by {CHECKPOINT} ({checkpoint.size} events)"
        )
    if events.roots[checkpoint.size] != checkpoint.root:
        raise Failed(
            f"{CHECKPOINT}: the root of events 1..{checkpoint.size} is not the signed root; "
            "an event was changed, inserted, removed or reordered"
        )
    for name, old in older:
        if events.roots[old.size] != old.root:
            raise Failed(
                f"{name}: events 1..{old.size} no longer have the kept root; "
                "the history it covers was rewritten"
            )
    if events.misread:  # reported once the bytes are proved, so a forged event is named as such
        raise Failed(events.misread)
    if events.forged:
        raise Failed(events.forged)

    if manifest["event_count"] != events.total:
        raise Failed(
            f"{MANIFEST}: event_count {manifest['event_count']}, bundle has {events.total}"
        )
    for name, expected in sorted(manifest["sha256"].items()):
        actual = events.sha256 if name == EVENTS else hashlib.sha256(bundle.read(name)).hexdigest()
        if actual != expected:
            raise Failed(f"{MANIFEST}: the SHA-256 of {name} does not match")

    if manifest.get("withheld_count", 0) != events.withheld:
        raise Failed(
            f"{MANIFEST}: withheld_count {manifest.get('withheld_count')}, "
            f"bundle withholds {events.withheld}"
        )
    cosigners = ""
    for witness in witnesses:
        by_witness = [cp.size for name, cp in [(CHECKPOINT, checkpoint), *older]
                      if cosigned(cp, witness, name)]
        if not by_witness:
            raise Failed(f"no checkpoint checked carries a valid cosignature by witness "
                         f"{witness[0]}; give the cosigned checkpoint with --checkpoint")
        cosigners += f", cosigned by {witness[0]} up to {max(by_witness)} events"

    fingerprint = hashlib.sha256(key.public_bytes_raw()).hexdigest()
    return (
        f"OK: {events.total} events, root {checkpoint.root.hex()}, "
        f"signed {checkpoint.time} by key {fingerprint}"
        + "".join(f", consistent with {name} ({old.size} events)" for name, old in older)
        + cosigners
        + f"; signatures: {events.signatures.digital} digital (manifest signatures checked "
        f"against the signers' keys; content hashes not recomputed by this script), "
        f"{events.signatures.attested} password-attested (no digital signature)"
        + f"; role changes: {events.signatures.roles_signed} signed by an administrator, "
        f"{events.signatures.roles_legacy} legacy (unsigned, before digital signatures)"
        + f"; deactivations, unlocks and password changes: {events.signatures.changes_signed} "
        f"signed, {events.signatures.changes_legacy} legacy (unsigned, before digital signatures)"
        + (f"; service accounts and their API tokens: {events.signatures.services_signed} "
           f"signed, {events.signatures.services_legacy} legacy (unsigned, before digital "
           "signatures)" if events.signatures.services_signed + events.signatures.services_legacy
           else "")
        + (
            f"\n{events.withheld} line(s) withheld (account events of an earlier release that "
            "hold a password hash): their place in the tree is proved, their content could not "
            "be read"
            if events.withheld
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an exported capa audit bundle offline.")
    parser.add_argument("bundle", type=Path, help="bundle directory or .zip file")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="an earlier checkpoint kept elsewhere; may be repeated",
    )
    parser.add_argument(
        "--public-key", type=Path, metavar="PEM", help="the store public key you trust"
    )
    parser.add_argument("--vkey", metavar="VKEY", help="the store's verifier key you trust "
                        "(capa audit vkey), or a file holding it")
    parser.add_argument("--witness", action="append", default=[], metavar="VKEY",
                        help="a witness vkey: a checkpoint checked must carry its valid "
                        "cosignature; may be repeated")
    args = parser.parse_args(argv)
    try:
        print(verify(args.bundle, args.checkpoint, args.public_key, args.vkey,
                     tuple(args.witness)))
        return EXIT_OK
    except Failed as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Unusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as exc:  # an auditor gets one line, never a traceback
        print(f"error: cannot verify {args.bundle}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
