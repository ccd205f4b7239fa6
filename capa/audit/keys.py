"""The store's Ed25519 key: key files, where a store's key lives, and the key a store is pinned to.

The private key signs checkpoints (mode 0600, never overwritten); ``<key>.pub`` beside it is for
every verifier to read. A store's first event records the fingerprint of its key, so a replaced
key is noticed (``bound_fingerprint``). The key of a SQLite store sits beside it
(``<store>.key``) unless CAPA_KEY names it; a PostgreSQL store has no file of capa's to sit
beside, so its key needs CAPA_KEY or --key.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from capa.audit.errors import KeyFileError, SigningError
from capa.domain.errors import InvalidInput, NotFound

__all__ = [
    "KeyLike",
    "bound_fingerprint",
    "configured_key_path",
    "create_store_key",
    "default_key_path",
    "fingerprint",
    "generate_private_key",
    "is_uri",
    "load_private_key",
    "load_public_key",
    "origin_of",
    "public_key_for",
    "public_key_from_pem",
    "public_key_pem",
    "raw_public_key",
    "unplaced",
]

KeyLike = Ed25519PrivateKey | Ed25519PublicKey


# -- key files -------------------------------------------------------------------------------


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



# -- the store key ---------------------------------------------------------------------------


def is_uri(target: str) -> bool:
    """Whether a store target is a database URI (PostgreSQL) rather than a SQLite file."""
    return "://" in target or target.startswith(("postgresql:", "postgres:"))


#: Why a PostgreSQL store needs its key and log placed: the server holds no file of capa's to
#: sit beside, and the folder a command happens to run in is no place for a trust anchor.
_UNPLACED = ("a PostgreSQL store keeps its {what} in a file you choose: give {option}, or set "
             "{env} (see docs/postgres.md)")


def unplaced(what: str, option: str, env: str) -> InvalidInput:
    """The error for a PostgreSQL store whose key or checkpoint log has no configured place."""
    return InvalidInput(_UNPLACED.format(what=what, option=option, env=env))


def configured_key_path(target: str) -> Path | None:
    """Where the store key is configured to be: CAPA_KEY, else ``<store>.key`` beside a SQLite
    file; None for a PostgreSQL store without CAPA_KEY."""
    env = os.environ.get("CAPA_KEY")
    if env:
        return Path(env)
    return None if is_uri(target) else Path(f"{target}.key")


def default_key_path(target: str) -> Path:
    """The store key outside the store: CAPA_KEY, else ``<store>.key``; a PostgreSQL store
    needs CAPA_KEY (or --key), InvalidInput otherwise."""
    path = configured_key_path(target)
    if path is None:
        raise unplaced("signing key", "--key PATH", "CAPA_KEY")
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
                raise unplaced("signing key", "--key PATH", "CAPA_KEY")
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


def origin_of(public_key: KeyLike) -> str:
    """The checkpoint origin of a store: named by its key, so it has no spaces and is stable."""
    return f"capa/{fingerprint(public_key)[:16]}"


def bound_fingerprint(app: Any) -> str | None:
    """The fingerprint of the key the store's first event pins it to (None: an unbound store,
    made before stores had keys, or a store without its first record)."""
    try:
        value = app.store_info().get("key_fingerprint")
    except Exception:  # noqa: BLE001 - a store without its first record binds no key
        return None
    return str(value) if value else None
