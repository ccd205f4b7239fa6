"""Users' Ed25519 signing keys (SPEC §9.2): made at account creation, kept only encrypted.

A private key is encrypted with AES-256-GCM under a key derived from the user's password by
scrypt (memory-hard, 16 MiB per derivation: the cost of the password hash, which already
bounds an offline guess; more here would slow every signature and protect nothing more). The
user id and key id are the associated data, so a wrapped key copied to another user's row does
not open. Format: ``aesgcm-scrypt$n$r$p$salt$nonce$ciphertext`` (base64 parts).
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from capa.domain.errors import NotPermitted

_SCHEME = "aesgcm-scrypt"
_N, _R, _P = 2**14, 8, 1


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key, base64: how account events record it."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(public_key: str) -> str:
    """A short stable name of a public key: the first 16 hex digits of SHA-256 of its bytes."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * r * n, dklen=32)


def _aad(user_id: str, kid: str) -> bytes:
    return f"capa-user-key-v1\n{user_id}\n{kid}".encode()


def wrap(key: Ed25519PrivateKey, password: str, user_id: str) -> str:
    """The private key encrypted under the password, bound to its user and key id."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = key_id(public_key_b64(key))
    sealed = AESGCM(_derive(password, salt, _N, _R, _P)).encrypt(nonce, raw,
                                                                 _aad(user_id, kid))
    parts = [base64.b64encode(x).decode("ascii") for x in (salt, nonce, sealed)]
    return "$".join([_SCHEME, str(_N), str(_R), str(_P), *parts])


def unwrap(wrapped: str, password: str, user_id: str, kid: str) -> Ed25519PrivateKey:
    """The private key, or NotPermitted when the password (or the stored row) does not open it."""
    try:
        scheme, n, r, p, salt, nonce, sealed = wrapped.split("$")
        if scheme != _SCHEME:
            raise ValueError(scheme)
        raw = AESGCM(_derive(password, base64.b64decode(salt), int(n), int(r), int(p))).decrypt(
            base64.b64decode(nonce), base64.b64decode(sealed), _aad(user_id, kid))
        key = Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, InvalidTag):
        raise NotPermitted(f"the signing key of {user_id} cannot be opened with this password; "
                           "nothing was signed") from None
    if key_id(public_key_b64(key)) != kid:
        raise NotPermitted(f"the stored signing key of {user_id} is not the one its account "
                           "records; nothing was signed")
    return key


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()

