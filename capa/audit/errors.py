"""What the audit raises: a failed integrity check (exit 6) and the errors of keys and notes."""

from __future__ import annotations

from capa.domain.errors import IntegrityFailure

__all__ = [
    "CheckpointSignatureError",
    "KeyFileError",
    "MalformedCheckpointError",
    "SigningError",
    "TamperDetected",
    "UnreadableEvent",
]


class TamperDetected(IntegrityFailure):
    """Verification failed; names the first bad position, record and version where it can."""

    def __init__(self, message: str, *, position: int | None = None, record: str | None = None,
                 version: int | None = None) -> None:
        where = ""
        if position is not None:
            where = f"position {position}"
            if record is not None:
                where += f" ({record} version {version})"
            where += ": "
        super().__init__(f"integrity check failed: {where}{message}")
        self.position = position
        self.record = record
        self.version = version


class UnreadableEvent(IntegrityFailure):
    """A stored event whose state is not the bytes capa writes (e.g. a SQLite TEXT value): it
    was written past capa. Exit 6, worded like TamperDetected."""

    def __init__(self, position: int, record: str, version: int, kind: str) -> None:
        super().__init__(f"integrity check failed: position {position} ({record} version "
                         f"{version}): mismatch: the stored state is {kind}, not the bytes capa "
                         "writes; the event was written past capa")
        self.position, self.record, self.version = position, record, version


class SigningError(Exception):
    """A key file or a signed note cannot be used (capa.audit.keys, capa.audit.notes)."""


class KeyFileError(SigningError):
    """A key file is missing, unreadable, not an Ed25519 key, too widely readable, or would be
    overwritten."""


class MalformedCheckpointError(SigningError, ValueError):
    """A checkpoint or signed note does not have the exact format of capa.audit.notes."""


class CheckpointSignatureError(SigningError):
    """A well-formed checkpoint carries no valid signature by the expected key."""
