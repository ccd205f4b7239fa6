"""Ed25519 store keys and signed checkpoints of the audit ledger (C2SP signed-note format).

A checkpoint commits to the ledger's Merkle tree at one size. Its note text is a C2SP
tlog-checkpoint body with one extension line carrying the signing time::

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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "Checkpoint",
    "CheckpointSignatureError",
    "KeyFileError",
    "MalformedCheckpointError",
    "NoteSignature",
    "SignedCheckpoint",
    "SigningError",
    "create_checkpoint",
    "fingerprint",
    "format_time",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "public_key_from_pem",
    "public_key_pem",
    "raw_public_key",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
]

HASH_SIZE = 32
ED25519_SIGNATURE_TYPE = b"\x01"
# signed-note asks verifiers to cap the number of signatures and to accept at least 16.
MAX_SIGNATURES = 100

_EM_DASH = "\u2014"
_SIZE_RE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")

KeyLike = Ed25519PrivateKey | Ed25519PublicKey


class SigningError(Exception):
    """Base class of the errors raised by this module."""


class KeyFileError(SigningError):
    """A key file is missing, unreadable, not an Ed25519 key, too widely readable, or would be
    overwritten."""


class MalformedCheckpointError(SigningError, ValueError):
    """A checkpoint or signed note does not have the exact format described in this module."""


class CheckpointSignatureError(SigningError):
    """A well-formed checkpoint carries no valid signature by the expected key."""


# --- keys ----------------------------------------------------------------------------------------


def generate_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Create a new Ed25519 key and write it to ``path`` (PEM, PKCS#8, unencrypted, mode 0600).

    Never overwrites: an existing file raises KeyFileError, so a store key cannot be lost by
    re-running a setup command. The parent directory must exist.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    target = Path(path)
    try:
        # O_EXCL makes "refuse to overwrite" atomic, and the mode is set at creation so the key is
        # never readable by others, not even for an instant.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {target} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {target}: {exc.strerror}") from None
    try:
        # The umask may have removed bits from the requested mode, never added: make it exact.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {target}: {exc.strerror}") from None
    return key


def load_private_key(
    path: str | os.PathLike[str], *, require_private_mode: bool = True
) -> Ed25519PrivateKey:
    """Load an unencrypted PEM Ed25519 private key.

    Like ssh, refuses a key file that group or others may read or write (unless
    ``require_private_mode`` is False), since such a key can no longer vouch for checkpoints.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode
        data = target.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {target}: {exc.strerror}") from None
    if require_private_mode and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {target} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
            "it must be 0600"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"key file {target} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"key file {target} does not hold an Ed25519 key")
    return key


def public_key_from_pem(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM SubjectPublicKeyInfo Ed25519 public key."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("the public key is not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load a PEM Ed25519 public key from a file."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {target}: {exc.strerror}") from None
    try:
        return public_key_from_pem(data)
    except KeyFileError as exc:
        raise KeyFileError(f"{target}: {exc}") from None


def _public(key: KeyLike) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def public_key_pem(key: KeyLike) -> bytes:
    """Return the PEM (SubjectPublicKeyInfo) encoding of a key's public half."""
    return _public(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def raw_public_key(key: KeyLike) -> bytes:
    """Return the raw 32-byte Ed25519 public key (RFC 8032 encoding)."""
    return _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: KeyLike) -> str:
    """Return the key fingerprint: lowercase hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def _check_key_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise MalformedCheckpointError(f"{what} must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name) or _CONTROL_RE.search(name):
        raise MalformedCheckpointError(
            f"{what} must not contain spaces, '+' or control characters: {name!r}"
        )


def key_id(key_name: str, key: KeyLike) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 key under ``key_name``."""
    _check_key_name(key_name, "key name")
    material = key_name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + raw_public_key(key)
    return hashlib.sha256(material).digest()[:4]


# --- checkpoints ---------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """Format an aware datetime as a checkpoint time: UTC, whole seconds, ``Z`` suffix."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("checkpoint time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Checkpoint:
    """The signed statement "the log ``origin`` had ``size`` events with ``root_hash`` at ``time``".

    ``time`` is the ISO 8601 UTC text exactly as signed (``2024-05-01T12:00:00Z``); it is kept as
    text so that parsing and re-serialising a checkpoint never changes a signed byte.
    """

    origin: str
    size: int
    root_hash: bytes
    time: str

    def __post_init__(self) -> None:
        _check_key_name(self.origin, "origin")
        if type(self.size) is not int or self.size < 0:
            raise MalformedCheckpointError(f"tree size must be an int >= 0, got {self.size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise MalformedCheckpointError(f"root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.time, str) or not _TIME_RE.fullmatch(self.time):
            raise MalformedCheckpointError(
                f"time must be ISO 8601 UTC like 2024-05-01T12:00:00Z, got {self.time!r}"
            )
        try:
            datetime.fromisoformat(self.time)
        except ValueError:
            raise MalformedCheckpointError(f"time is not a valid date: {self.time!r}") from None

    @property
    def issued_at(self) -> datetime:
        """The checkpoint time as an aware UTC datetime."""
        return datetime.fromisoformat(self.time).astimezone(UTC)

    def body(self) -> str:
        """Return the note text that is signed (every line ends with a newline)."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\ntime {self.time}\n"


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


def _b64decode_strict(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCheckpointError(f"{what} is not valid base64") from None
    # Non-canonical encodings (stray padding bits) would give one signed value two spellings.
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedCheckpointError(f"{what} is not canonical base64")
    return raw


def _parse_body(text: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) != 4:
        raise MalformedCheckpointError(
            f"checkpoint text must have 4 lines (origin, size, root, time), has {len(lines)}"
        )
    origin, size_text, root_text, time_line = lines
    if not _SIZE_RE.fullmatch(size_text):
        raise MalformedCheckpointError(f"tree size is not a decimal number: {size_text!r}")
    root = _b64decode_strict(root_text, "root hash")
    if not time_line.startswith("time "):
        raise MalformedCheckpointError(f"fourth line must be 'time <UTC time>', got {time_line!r}")
    return Checkpoint(origin, int(size_text), root, time_line[len("time ") :])


def _parse_signature_line(line: str) -> NoteSignature:
    prefix = _EM_DASH + " "
    if not line.startswith(prefix):
        raise MalformedCheckpointError(f"not a signature line: {line[:40]!r}")
    parts = line[len(prefix) :].split(" ")
    if len(parts) != 2:
        raise MalformedCheckpointError("a signature line must be '— <key name> <base64>'")
    name, blob_text = parts
    _check_key_name(name, "signature key name")
    blob = _b64decode_strict(blob_text, "signature")
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

    Raises MalformedCheckpointError on anything but the exact format described in this module:
    besides the note-level checks of ``parse_note``, extra or missing body lines, a size with
    leading zeros or signs, non-canonical base64, or a time not in the documented form.
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
