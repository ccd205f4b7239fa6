"""Outgoing webhooks' port: the webhook key file, each webhook's signing secret derived from it,
the signature of a request, and the HTTP POST itself (`http.client`).

The key is 32 random bytes in a file only the server's account reads (0600), beside a SQLite
store (`<store>.webhook-key`), beside the store key of a PostgreSQL store
(`<CAPA_KEY>.webhook-key`), or where CAPA_WEBHOOK_KEY says. A webhook's secret is
HKDF-SHA256 of that key for the webhook's id, so it is never written anywhere: not into the
log, an export or a bundle, nor into a table of the store.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from capa.adapters.eventlog import backend_of, sqlite_file
from capa.adapters.files import private_file
from capa.domain.errors import InvalidInput

KEY_BYTES = 32
_INFO = b"capa webhook secret v1 "
_SALT = b"capa-webhook"
#: Longest error text kept with a failed attempt.
_ERROR_TEXT = 200


def webhook_key_path(recorder: Any) -> Path:
    """Where the webhook key is: CAPA_WEBHOOK_KEY, else beside a SQLite store, else beside the
    store key (CAPA_KEY) of a PostgreSQL store; InvalidInput when none is configured."""
    env = os.environ.get("CAPA_WEBHOOK_KEY")
    if env:
        return Path(env)
    found = sqlite_file(recorder)
    if found is not None:
        return Path(f"{found}.webhook-key")
    store_key = os.environ.get("CAPA_KEY")
    if store_key and backend_of(recorder) == "postgres":
        return Path(f"{store_key}.webhook-key")
    raise InvalidInput("the webhook key has no place: set CAPA_WEBHOOK_KEY to a file on the "
                       "server (see docs/server.md)")


def webhook_key(path: Path, *, create: bool) -> bytes:
    """The webhook key at `path`; with `create`, made (0600) if there is none yet."""
    if create and not path.exists():
        if not path.parent.is_dir():
            raise InvalidInput(f"folder {str(path.parent)!r} for the webhook key does not exist")
        try:
            fd = private_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass  # another command made it first
        else:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise InvalidInput(f"no webhook key at {path}: a webhook added there makes one, or set "
                           "CAPA_WEBHOOK_KEY") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise InvalidInput(f"the webhook key {path} cannot be read") from None
    if len(key) != KEY_BYTES:
        raise InvalidInput(f"the webhook key {path} is not {KEY_BYTES} bytes of hex")
    return key


def webhook_secret(key: bytes, webhook: str) -> str:
    """The signing secret of one webhook, as the receiver is given it: 64 hex digits. The
    HMAC key is this text's ASCII bytes."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                   info=_INFO + webhook.encode("ascii")).derive(key)
    return derived.hex()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256, keyed with the secret, of `timestamp + "." + body`."""
    mac = hmac.new(secret.encode("ascii"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class PostOutcome:
    """What came of one POST: the HTTP status (None when no answer came) and, unless it was a
    2xx answer, why it failed."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PostOutcome:
    """POST `body` to `url`, connecting directly (never through a proxy from the environment)
    and following no redirect, which would send the signed body somewhere no administrator
    named; a 2xx answer delivers it, anything else is a failure. HTTPS checks the server's
    certificate against the system's authorities. Header names are sent as given."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    try:
        if parts.scheme.lower() == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout,
                context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                    timeout=timeout)
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
            answer = connection.getresponse()
            answer.read(65536)
            status, reason = int(answer.status), str(answer.reason)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return PostOutcome(None, f"{type(exc).__name__}: {exc}"[:_ERROR_TEXT])
    if not 200 <= status < 300:
        return PostOutcome(status, f"HTTP {status} {reason}".strip()[:_ERROR_TEXT])
    return PostOutcome(status, None)
