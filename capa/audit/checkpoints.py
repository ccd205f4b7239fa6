"""The checkpoint log: signed notes of the ledger's root, where the log lives, making and reading.

The log is a text file of signed checkpoint notes (capa.audit.notes), each followed by a blank
line: ``<store>.checkpoints`` beside a SQLite store unless CAPA_CHECKPOINTS names it, beside the
store key for a PostgreSQL store. ``capa init`` starts it empty, so that from then on a missing
log is noticed (SPEC §9.4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from capa.adapters.files import private_file
from capa.audit.errors import SigningError, TamperDetected
from capa.audit.keys import (
    configured_key_path,
    fingerprint,
    is_uri,
    load_private_key,
    origin_of,
    unplaced,
)
from capa.audit.ledger import Ledger
from capa.audit.notes import Checkpoint, create_checkpoint, sign_checkpoint, verify_checkpoint
from capa.domain.errors import InvalidInput, NotFound

__all__ = [
    "CheckpointLog",
    "LoggedCheckpoint",
    "checkpoint_log_path",
    "configured_log_path",
    "make_checkpoint",
    "read_note",
    "trusted",
]


def configured_log_path(target: str, key_path: Path | None = None) -> Path | None:
    """Where the checkpoint log is configured to be: CAPA_CHECKPOINTS, else
    ``<store>.checkpoints`` beside a SQLite file; for a PostgreSQL store beside its configured
    key (``<key name>.checkpoints``), else None."""
    env = os.environ.get("CAPA_CHECKPOINTS")
    if env:
        return Path(env)
    if not is_uri(target):
        return Path(f"{target}.checkpoints")
    key_path = key_path or configured_key_path(target)
    return key_path.with_suffix(".checkpoints") if key_path is not None else None


def checkpoint_log_path(target: str, key_path: Path | None = None) -> Path:
    """The checkpoint log: CAPA_CHECKPOINTS, else ``<store>.checkpoints``, else (PostgreSQL)
    beside the store key; InvalidInput when a PostgreSQL store configures neither."""
    path = configured_log_path(target, key_path)
    if path is None:
        raise unplaced("checkpoint log", "--checkpoints FILE", "CAPA_CHECKPOINTS (or CAPA_KEY)")
    return path


@dataclass(frozen=True)
class LoggedCheckpoint:
    number: int
    note: str


class CheckpointLog:
    """Signed notes appended to a text file, each followed by a blank line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> None:
        """Start an empty log (capa init): from then on a missing log is noticed (SPEC §9.4)."""
        if self.path.exists():
            raise InvalidInput(f"a checkpoint log already exists at {self.path}; give another "
                               "path with CAPA_CHECKPOINTS, so that no store's log is reused")
        os.close(private_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))

    def append(self, note: str) -> None:
        fd = private_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(note + "\n")
            out.flush()
            os.fsync(out.fileno())

    def notes(self) -> list[LoggedCheckpoint]:
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        blocks = [b for b in text.split("\n\n") if b.strip()]
        notes: list[str] = []
        body: str | None = None
        # A note is a body block then a signature block; the blank line inside a note and the
        # one between notes look alike, so blocks are paired by what they start with.
        for block in blocks:
            block = block.strip("\n")
            if block.startswith("\u2014 "):
                if body is None:
                    raise TamperDetected(f"{self.path}: signature lines without a checkpoint")
                notes.append(f"{body}\n\n{block}\n")
                body = None
            else:
                if body is not None:
                    raise TamperDetected(f"{self.path}: a checkpoint without a signature")
                body = block
        if body is not None:
            raise TamperDetected(f"{self.path}: the last checkpoint has no signature")
        return [LoggedCheckpoint(i, n) for i, n in enumerate(notes, start=1)]


def make_checkpoint(app: Any, key_path: Path, log_path: Path) -> dict[str, Any]:
    """Catch the ledger up, sign a checkpoint of the whole log and append it to the log."""
    try:
        key = load_private_key(key_path)
    except SigningError as exc:
        raise NotFound(f"{exc}; the store key is made by capa init (or give --key PATH)") from None
    tree = Ledger(app).catch_up()
    checkpoint = create_checkpoint(origin_of(key), tree.size, tree.root())
    note = sign_checkpoint(checkpoint, key)
    CheckpointLog(log_path).append(note)
    return {"origin": checkpoint.origin, "size": checkpoint.size,
            "root": checkpoint.root_hash.hex(), "time": checkpoint.time,
            "key_fingerprint": fingerprint(key), "log": str(log_path), "note": note}


def read_note(path: Path) -> str:
    """A checkpoint kept in a file of its own (``--against``)."""
    try:
        # A copy kept by hand may have gained or lost blank lines at the end; nothing signed.
        return path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read checkpoint {path}: {exc}") from None


def trusted(note: str, key: Ed25519PublicKey, name: str) -> Checkpoint:
    """The checkpoint of a note signed by the store key; TamperDetected otherwise."""
    try:
        return verify_checkpoint(note, key)
    except SigningError as exc:
        raise TamperDetected(f"{name}: {exc}; the checkpoint is forged or damaged, or was "
                             f"signed by another key than {fingerprint(key)}") from None
