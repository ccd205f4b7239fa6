"""Verifier keys of C2SP signed notes (vkeys) and the key names and ids they carry.

A vkey is ``<name>+<hex key id>+base64(<type byte> || 32-byte public key)``: type 0x01 for the
store's Ed25519 checkpoint signatures, 0x04 for witnesses' C2SP tlog-cosignature/v1
cosignatures. The key id is ``SHA-256(key name || "\\n" || type || raw public key)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from capa.audit.errors import MalformedCheckpointError
from capa.audit.keys import KeyLike, raw_public_key

__all__ = [
    "COSIGNATURE_TYPE",
    "ED25519_SIGNATURE_TYPE",
    "Verifier",
    "b64decode_strict",
    "check_key_name",
    "key_id",
    "parse_vkey",
    "valid_key_name",
    "vkey",
]

ED25519_SIGNATURE_TYPE = b"\x01"
#: tlog-cosignature/v1: timestamped Ed25519 cosignatures of a checkpoint.
COSIGNATURE_TYPE = b"\x04"
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")


def b64decode_strict(text: str, what: str) -> bytes:
    """Canonical base64, MalformedCheckpointError otherwise (`what` names the value)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCheckpointError(f"{what} is not valid base64") from None
    # Non-canonical encodings (stray padding bits) would give one signed value two spellings.
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedCheckpointError(f"{what} is not canonical base64")
    return raw



def check_key_name(name: str, what: str) -> None:
    """A key name of a signed note: non-empty, no spaces, no '+', no control characters."""
    if not isinstance(name, str) or not name:
        raise MalformedCheckpointError(f"{what} must be a non-empty string")
    if "+" in name or any(c.isspace() for c in name) or _CONTROL_RE.search(name):
        raise MalformedCheckpointError(
            f"{what} must not contain spaces, '+' or control characters: {name!r}"
        )


def valid_key_name(name: str) -> bool:
    """Whether ``name`` may name a key in a signed note (non-empty, no spaces, no '+')."""
    try:
        check_key_name(name, "key name")
    except MalformedCheckpointError:
        return False
    return True


def key_id(key_name: str, key: KeyLike, signature_type: bytes = ED25519_SIGNATURE_TYPE) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 key under ``key_name``.

    ``signature_type`` is 0x01 for note signatures, 0x04 for tlog-cosignature/v1."""
    check_key_name(key_name, "key name")
    material = key_name.encode() + b"\n" + signature_type + raw_public_key(key)
    return hashlib.sha256(material).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A parsed verifier key: who signs (name, key id), how (signature type), with what key."""

    name: str
    key_id: bytes
    signature_type: bytes
    public_key: Ed25519PublicKey

    def text(self) -> str:
        """The vkey in its text form."""
        return vkey(self.name, self.public_key, self.signature_type)


def vkey(key_name: str, key: KeyLike, signature_type: bytes = ED25519_SIGNATURE_TYPE) -> str:
    """Return the signed-note verifier key ``name+keyid+base64(type || public key)``."""
    material = base64.b64encode(signature_type + raw_public_key(key)).decode("ascii")
    return f"{key_name}+{key_id(key_name, key, signature_type).hex()}+{material}"


def parse_vkey(text: str) -> Verifier:
    """Parse a vkey of an Ed25519 key (type 0x01) or Ed25519 cosigner (type 0x04).

    The key id must be the one derived from the name, type and key, so a vkey whose parts were
    mixed up is refused rather than silently matching nothing. Raises MalformedCheckpointError.
    """
    text = text.strip()
    # The base64 part may itself contain '+': split on the first two only.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedCheckpointError("a verifier key is name+keyid+base64(type || key)")
    name, id_text, material_text = parts
    check_key_name(name, "verifier key name")
    if not re.fullmatch(r"[0-9a-f]{8}", id_text):
        raise MalformedCheckpointError(f"verifier key id is not 8 hex digits: {id_text!r}")
    material = b64decode_strict(material_text, "verifier key")
    if len(material) != 33 or material[:1] not in (ED25519_SIGNATURE_TYPE, COSIGNATURE_TYPE):
        raise MalformedCheckpointError(
            "verifier key is not an Ed25519 (type 0x01) or cosignature (type 0x04) key"
        )
    try:
        public_key = Ed25519PublicKey.from_public_bytes(material[1:])
    except ValueError:
        raise MalformedCheckpointError("verifier key is not an Ed25519 public key") from None
    if key_id(name, public_key, material[:1]) != bytes.fromhex(id_text):
        raise MalformedCheckpointError(
            f"verifier key id {id_text} does not belong to that name and key"
        )
    return Verifier(name, bytes.fromhex(id_text), material[:1], public_key)
