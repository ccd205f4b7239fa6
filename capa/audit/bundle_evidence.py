"""The evidence files out of a verified audit bundle, written under safe names (SPEC §9.5)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from capa.adapters.files import private_file
from capa.audit.bundle_files import EVENTS, BundleReader
from capa.audit.errors import TamperDetected
from capa.domain.errors import InvalidInput

__all__ = ["extract_evidence", "safe_name"]


#: The topics of an evidence file's event: its own, and the one earlier stores hold.
_EVIDENCE_TOPICS = ("capa.domain.evidence:EvidenceFile.EvidenceStored",
                    "capa.domain.store:EvidenceFile.EvidenceStored")
#: A name longer than this (in UTF-8 bytes) is cut: every file system takes it.
_NAME_BYTES = 200


def extract_evidence(path: Path, folder: Path) -> list[dict[str, Any]]:
    """Write the evidence files a bundle holds into `folder` (absent or empty), each under the
    name it was kept with, and return what was written. Call it only once `verify_bundle` has
    passed: the bytes are then the proved ones.

    Every file's content is checked against its SHA-256 before anything is written
    (TamperDetected, exit 6). Names come from the bundle, so they are made plain file names
    inside `folder` (`safe_name`): none can climb out of it, be absolute, or hold a NUL or a
    control character. A name kept for two different contents gets its SHA-256's first 12 hex
    digits in front; content kept under no name is written as its SHA-256."""
    bundle = BundleReader(path)
    names: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for state in _evidence_states(bundle):
        digest = state.get("sha256")
        if state["_topic"] in _EVIDENCE_TOPICS:
            content = _evidence_bytes(state)
            sizes[str(digest)] = len(content)
        for name, kept in _named_evidence(state):
            names.setdefault(kept, [])
            if name not in names[kept]:
                names[kept].append(name)
    plan: dict[str, str] = {}
    for digest in sizes:
        for name in names.get(digest, []) or [digest]:
            plan.setdefault(f"{digest}/{name}", safe_name(name, digest))
    taken: dict[str, set[str]] = {}
    for key, file_name in plan.items():
        taken.setdefault(file_name, set()).add(key.partition("/")[0])
    for key, file_name in plan.items():
        digest = key.partition("/")[0]
        if len(taken[file_name]) > 1:
            plan[key] = safe_name(f"{digest[:12]}-{file_name}", digest)
    _ready(folder)
    written: list[dict[str, Any]] = []
    done: set[str] = set()
    for state in _evidence_states(bundle):
        if state["_topic"] not in _EVIDENCE_TOPICS:
            continue
        digest, content = str(state["sha256"]), _evidence_bytes(state)
        for key, file_name in plan.items():
            if key.partition("/")[0] != digest:
                continue
            if file_name not in done:
                # Two names that read alike once made safe ("a/b", "a_b") for one content.
                _write_new(folder, file_name, content)
                done.add(file_name)
            written.append({"name": key.partition("/")[2], "file": file_name,
                            "sha256": digest, "size": len(content)})
    return written


def safe_name(name: str, digest: str) -> str:
    """`name` as one plain file name: path separators, NUL, control and format characters
    (bidirectional overrides among them) become `_`, leading dots go (no `..`, no hidden
    file), and an empty result is the SHA-256."""
    text = "".join("_" if c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl",
                                                                      "Zp") else c
                   for c in name).strip().lstrip(".").strip()
    text = text.encode("utf-8")[:_NAME_BYTES].decode("utf-8", "ignore")
    return text or digest


def _evidence_states(bundle: BundleReader) -> Iterator[dict[str, Any]]:
    """The decoded fields of every stored event that holds or names evidence."""
    with bundle.open(EVENTS) as stream:
        for line in stream:
            event = json.loads(line)
            if "state_b64" not in event or (b"evidence" not in line
                                            and b"EvidenceStored" not in line):
                continue
            try:
                state = json.loads(base64.b64decode(event["state_b64"]))
            except ValueError:
                continue
            if isinstance(state, dict):
                yield {**state, "_topic": event["event_type"]}


def _evidence_bytes(state: dict[str, Any]) -> bytes:
    digest = state.get("sha256")
    try:
        content = base64.b64decode(str(state.get("content_b64")), validate=True)
    except (binascii.Error, ValueError):
        raise TamperDetected(f"evidence {digest}: the stored content is not valid base64; "
                             "nothing was extracted") from None
    if not isinstance(digest, str) or hashlib.sha256(content).hexdigest() != digest \
            or state.get("ref") != f"EVIDENCE-{digest}":
        raise TamperDetected(f"evidence {digest}: the content does not have the SHA-256 it was "
                             "kept under; nothing was extracted")
    return content


def _named_evidence(value: Any) -> Iterator[tuple[str, str]]:
    """(name, sha256) of every evidence entry an event's fields hold, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "evidence" and isinstance(item, list):
                for entry in item:
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                            and isinstance(entry.get("sha256"), str):
                        yield entry["name"], entry["sha256"]
            else:
                yield from _named_evidence(item)
    elif isinstance(value, list):
        for item in value:
            yield from _named_evidence(item)


def _ready(folder: Path) -> None:
    """The folder to extract into: absent (made 0700) or an empty folder, never a link."""
    if folder.is_symlink():
        raise InvalidInput(f"{str(folder)!r} is a symbolic link; --extract needs a folder")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{str(folder)!r} exists and is not an empty folder")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise InvalidInput(f"cannot write into {str(folder)!r}: {exc.strerror}") from None


def _write_new(folder: Path, file_name: str, content: bytes) -> None:
    """A new 0600 file directly inside `folder`; nothing existing is followed or replaced."""
    target = folder / file_name
    if target.parent != folder or file_name in ("", ".", ".."):
        raise InvalidInput(f"{file_name!r} is not a file name inside {str(folder)!r}")
    try:
        fd = private_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
    except OSError as exc:
        raise InvalidInput(f"cannot write {str(target)!r}: {exc.strerror}") from None
