"""The files of an audit bundle, written and read, and what each line of its events file holds.

The layout and its reasons are in capa.audit.bundle. A line's readable fields are derived from the
stored bytes alone (``readable_fields``), so that a verifier holds them to the verified bytes; a
line may withhold its bytes only for an account event of an earlier release that holds a password
hash (``withheld_line``). scripts/verify_bundle.py repeats both.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from capa.audit.errors import TamperDetected
from capa.domain.errors import InvalidInput, NotFound

__all__ = [
    "CHECKPOINT",
    "EVENTS",
    "LINE_FIELDS",
    "MANIFEST",
    "PUBLIC_KEY",
    "READABLE",
    "USER_TOPIC",
    "WITHHELD_REASON",
    "BundleReader",
    "BundleWriter",
    "holds_secret",
    "misread",
    "readable_fields",
    "shown_type",
    "user_record_hex",
    "withheld_line",
]

EVENTS, CHECKPOINT, PUBLIC_KEY, MANIFEST = (
    "events.jsonl", "checkpoint.txt", "public_key.pem", "manifest.json")


# -- writing and reading the files -----------------------------------------------------------


class BundleWriter:
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


class BundleReader:
    """Files of a bundle, read from a directory or a zip file (refused when ambiguous)."""

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
USER_TOPIC = "capa.domain.user:User."
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
