"""Signed checkpoints of the audit ledger and their verifier keys (C2SP signed-note format).

A checkpoint commits to the ledger's Merkle tree at one size. Its note text is a C2SP
tlog-checkpoint body; capa writes one extension line carrying the signing time::

    <origin>
    <tree size>
    <base64 root hash>
    time <YYYY-MM-DDTHH:MM:SS[.ffffff]Z>

followed by a blank line and one or more C2SP signed-note signature lines::

    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature over the note text)>

The key id is ``SHA-256(key name || "\\n" || 0x01 || raw 32-byte public key)[:4]``, so notes signed
here verify with any signed-note implementation (golang.org/x/mod/sumdb/note and others). The key
name defaults to the origin, as tlog-checkpoint recommends. The time line is an extension line: it
is signed like the rest of the body, so a checkpoint also proves when the log had that size.

Any valid tlog-checkpoint is read: three lines and any non-empty extension lines (the first one is
taken as the time when it has exactly the form above; others are kept, opaque, as signed), and any
number of further signature lines (cosignatures, rotated or unknown keys), which are ignored
unless they claim the key being checked, as signed-note prescribes.

Verifier keys (vkeys, capa.audit.vkeys) name the signers: type 0x01 for the store's Ed25519
checkpoint signatures, 0x04 for witnesses' C2SP tlog-cosignature/v1 cosignatures, which sign ``"cosignature/v1\ntime <unix>\n" + note text`` and
carry ``base64(key id || 8-byte big-endian timestamp || signature)``.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from capa.audit.errors import CheckpointSignatureError, MalformedCheckpointError
from capa.audit.keys import fingerprint
from capa.audit.vkeys import (
    COSIGNATURE_TYPE,
    Verifier,
    b64decode_strict,
    check_key_name,
    key_id,
)

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "SignedCheckpoint",
    "cosign_note",
    "cosignature_time",
    "create_checkpoint",
    "format_time",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
]

HASH_SIZE = 32
_COSIGNATURE_HEADER = "cosignature/v1\n"
# signed-note asks verifiers to cap the number of signatures and to accept at least 16.
MAX_SIGNATURES = 100

_EM_DASH = "\u2014"
_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_LINE_BREAK_RE = re.compile(r"[\x00-\x1f]")


# --- checkpoints ---------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """Format an aware datetime as a checkpoint time: UTC, whole seconds, ``Z`` suffix."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("checkpoint time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_valid(text: str) -> bool:
    if not _TIME_RE.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    """The signed statement "the log ``origin`` had ``size`` events with ``root_hash`` at ``time``".

    ``time`` is the ISO 8601 UTC text exactly as signed (``2024-05-01T12:00:00Z``), or None for a
    checkpoint without capa's time line; it is kept as text so that parsing and re-serialising a
    checkpoint never changes a signed byte. ``extensions`` are the other extension lines, in
    signed order, after the time line.
    """

    origin: str
    size: int
    root_hash: bytes
    time: str | None
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # tlog-checkpoint only asks for a non-empty origin (spaces and '+' are discouraged, not
        # forbidden); capa's own origins are key names besides.
        if not isinstance(self.origin, str) or not self.origin or _LINE_BREAK_RE.search(
                self.origin):
            raise MalformedCheckpointError("origin must be a non-empty line of text")
        if type(self.size) is not int or self.size < 0:
            raise MalformedCheckpointError(f"tree size must be an int >= 0, got {self.size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise MalformedCheckpointError(f"root hash must be {HASH_SIZE} bytes")
        if self.time is not None and not (isinstance(self.time, str)
                                          and _time_valid(self.time)):
            raise MalformedCheckpointError(
                f"time must be ISO 8601 UTC like 2024-05-01T12:00:00Z, got {self.time!r}"
            )
        for line in self.extensions:
            if not isinstance(line, str) or not line or _LINE_BREAK_RE.search(line):
                raise MalformedCheckpointError("extension lines must be non-empty lines of text")

    @property
    def issued_at(self) -> datetime | None:
        """The checkpoint time as an aware UTC datetime (None without a time line)."""
        return None if self.time is None else datetime.fromisoformat(self.time).astimezone(UTC)

    @property
    def shown_time(self) -> str:
        """The time for messages: as signed, or a word saying there is none."""
        return self.time or "no time line"

    def body(self) -> str:
        """Return the note text that is signed (every line ends with a newline)."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root]
        if self.time is not None:
            lines.append(f"time {self.time}")
        return "".join(f"{line}\n" for line in [*lines, *self.extensions])


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note, not yet verified."""

    key_name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed checkpoint note: the checkpoint, its exact signed text and its signature lines."""

    checkpoint: Checkpoint
    text: str
    signatures: tuple[NoteSignature, ...]


def create_checkpoint(
    origin: str, size: int, root_hash: bytes, at: datetime | None = None
) -> Checkpoint:
    """Build a checkpoint of the tree of ``size`` leaves, timed ``at`` (default: now)."""
    return Checkpoint(origin, size, root_hash, format_time(at or datetime.now(UTC)))


def sign_note(text: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """Return ``text`` as a C2SP signed note with one Ed25519 signature by ``key_name``."""
    if not text.endswith("\n") or _CONTROL_RE.search(text):
        raise MalformedCheckpointError(
            "note text must end with a newline and contain no control characters"
        )
    signature = private_key.sign(text.encode("utf-8"))
    blob = base64.b64encode(key_id(key_name, private_key) + signature).decode("ascii")
    return f"{text}\n{_EM_DASH} {key_name} {blob}\n"


def sign_checkpoint(
    checkpoint: Checkpoint, private_key: Ed25519PrivateKey, key_name: str | None = None
) -> str:
    """Serialise and sign a checkpoint; the key name defaults to the checkpoint's origin."""
    return sign_note(checkpoint.body(), key_name or checkpoint.origin, private_key)


def _parse_body(text: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(
            f"checkpoint text must have at least 3 lines (origin, size, root), has {len(lines)}"
        )
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text):
        raise MalformedCheckpointError(f"tree size is not a decimal number: {size_text!r}")
    root = b64decode_strict(root_text, "root hash")
    if any(not line for line in lines):
        raise MalformedCheckpointError("checkpoint lines must not be empty")
    time: str | None = None
    # capa writes its time as the first extension line; any other line is another log's
    # extension, opaque here, and kept as signed.
    if extensions and extensions[0].startswith("time ") and _time_valid(extensions[0][5:]):
        time, extensions = extensions[0][5:], extensions[1:]
    return Checkpoint(origin, int(size_text), root, time, tuple(extensions))


def _parse_signature_line(line: str) -> NoteSignature:
    prefix = _EM_DASH + " "
    if not line.startswith(prefix):
        raise MalformedCheckpointError(f"not a signature line: {line[:40]!r}")
    parts = line[len(prefix) :].split(" ")
    if len(parts) != 2:
        raise MalformedCheckpointError("a signature line must be '— <key name> <base64>'")
    name, blob_text = parts
    check_key_name(name, "signature key name")
    blob = b64decode_strict(blob_text, "signature")
    if len(blob) < 5:
        raise MalformedCheckpointError("signature is too short")
    return NoteSignature(name, blob[:4], blob[4:])


def parse_note(note: str | bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Split a signed note into its text and its signature lines, without verifying anything.

    Raises MalformedCheckpointError for bad UTF-8, control characters (carriage returns too), a
    missing final newline or blank separator line, or a malformed or missing signature line.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedCheckpointError("note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise MalformedCheckpointError("note must be text")
    if _CONTROL_RE.search(note):
        raise MalformedCheckpointError("note contains control characters")
    if not note.endswith("\n"):
        raise MalformedCheckpointError("note must end with a newline")
    # The last blank line separates text from signatures; signature lines are never blank.
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedCheckpointError("note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    signature_lines = signature_block[:-1].split("\n") if signature_block else []
    if not signature_lines:
        raise MalformedCheckpointError("note has no signature line")
    if len(signature_lines) > MAX_SIGNATURES:
        raise MalformedCheckpointError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, tuple(_parse_signature_line(line) for line in signature_lines)


def open_note(note: str | bytes, public_key: Ed25519PublicKey, key_name: str | None = None) -> str:
    """Check that a signed note is signed by ``public_key`` and return its text.

    Following signed-note, signature lines of other keys (witnesses, a rotated key) are ignored,
    every signature whose name and key id match ``public_key`` must verify, and at least one must.
    With ``key_name`` None, any name whose key id matches ``public_key`` is accepted, so the
    caller only needs to trust the key itself.

    Raises MalformedCheckpointError or CheckpointSignatureError.
    """
    text, signatures = parse_note(note)
    expected_ids: dict[str, bytes] = {}
    matching: list[NoteSignature] = []
    for sig in signatures:
        if key_name is not None and sig.key_name != key_name:
            continue
        if sig.key_name not in expected_ids:
            expected_ids[sig.key_name] = key_id(sig.key_name, public_key)
        if sig.key_id == expected_ids[sig.key_name]:
            matching.append(sig)
    if not matching:
        raise CheckpointSignatureError(
            f"note is not signed by the key with fingerprint {fingerprint(public_key)}"
        )
    message = text.encode("utf-8")
    for sig in matching:
        try:
            if len(sig.signature) != 64:
                raise InvalidSignature
            public_key.verify(sig.signature, message)
        except InvalidSignature:
            raise CheckpointSignatureError(f"signature by {sig.key_name} does not verify") from None
    return text


def parse_checkpoint(note: str | bytes) -> SignedCheckpoint:
    """Parse a signed checkpoint note strictly, without verifying any signature.

    Raises MalformedCheckpointError on anything but a valid tlog-checkpoint: besides the
    note-level checks of ``parse_note``, fewer than three body lines, an empty line, a size with
    leading zeros or signs, or a root that is not canonical base64 of 32 bytes.
    """
    text, signatures = parse_note(note)
    return SignedCheckpoint(_parse_body(text), text, signatures)


def verify_checkpoint(
    note: str | bytes, public_key: Ed25519PublicKey, key_name: str | None = None
) -> Checkpoint:
    """Parse ``note`` and check it is signed by ``public_key``; return the trusted checkpoint.

    Signature rules are those of ``open_note``. The body is parsed before any signature is
    checked, so malformed input is reported as such. Raises MalformedCheckpointError or
    CheckpointSignatureError.
    """
    checkpoint = parse_checkpoint(note).checkpoint
    open_note(note, public_key, key_name)
    return checkpoint


# --- cosignatures (c2sp.org/tlog-cosignature, Ed25519 v1) -------------------------------------


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


def cosign_note(note: str | bytes, name: str, private_key: Ed25519PrivateKey,
                timestamp: int) -> str:
    """Return ``note`` with a tlog-cosignature/v1 line by ``name`` added at ``timestamp``.

    Earlier lines by the same cosigner (name and key id) are replaced, so a note never carries
    two statements of one witness. The note must already parse as a checkpoint."""
    signed = parse_checkpoint(note)
    if not 0 <= timestamp < 2**63:
        raise MalformedCheckpointError("cosignature time out of range")
    kid = key_id(name, private_key, COSIGNATURE_TYPE)
    signature = private_key.sign(_cosigned_message(signed.text, timestamp))
    blob = base64.b64encode(kid + struct.pack(">Q", timestamp) + signature).decode("ascii")
    lines = [f"{_EM_DASH} {s.key_name} "
             f"{base64.b64encode(s.key_id + s.signature).decode('ascii')}"
             for s in signed.signatures if (s.key_name, s.key_id) != (name, kid)]
    return signed.text + "\n" + "".join(f"{line}\n" for line in
                                        [*lines, f"{_EM_DASH} {name} {blob}"])


def cosignature_time(note: str | bytes, witness: Verifier) -> int | None:
    """The time of the witness's valid cosignature on ``note``, or None if it has none.

    As signed-note prescribes, lines of other keys are ignored and every line that claims this
    witness (its name and key id) must verify; one that does not raises
    CheckpointSignatureError. Raises MalformedCheckpointError for a malformed note."""
    if witness.signature_type != COSIGNATURE_TYPE:
        raise MalformedCheckpointError(f"{witness.name} is not a cosignature (type 0x04) key")
    signed = parse_checkpoint(note)
    latest: int | None = None
    for sig in signed.signatures:
        if (sig.key_name, sig.key_id) != (witness.name, witness.key_id):
            continue
        if len(sig.signature) != 8 + 64:
            raise CheckpointSignatureError(f"cosignature by {sig.key_name} is malformed")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        try:
            if timestamp >= 2**63:
                raise InvalidSignature
            witness.public_key.verify(sig.signature[8:],
                                      _cosigned_message(signed.text, timestamp))
        except InvalidSignature:
            raise CheckpointSignatureError(
                f"cosignature by {sig.key_name} does not verify") from None
        latest = max(latest or 0, timestamp)
    return latest
