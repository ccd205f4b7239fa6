"""Password hashing: salted scrypt, encoded so the parameters travel with the hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from capa.domain.errors import InvalidInput

MIN_LENGTH = 8

# scrypt parameters: n=2**14, r=8 needs 16 MiB per check, which makes offline guessing costly
# while keeping an interactive check well under a tenth of a second.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32


def _b64(data: bytes) -> str:

    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * r * n * 2, dklen=_KEY_BYTES)


def check_strength(password: str) -> None:
    """Refuse a password that is too short; the message never repeats the password."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt_b64$hash_b64` for a new random salt."""

    check_strength(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when the password matches; a malformed hash never matches."""

    try:
        scheme, n, r, p, salt_b64, key_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(key_b64)
        actual = _derive(password, salt, int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    # Constant-time comparison: response time must not reveal how much of the key matched.
    return hmac.compare_digest(actual, expected)
