"""Evidence back out (SPEC §10): the files kept with a record's actions and verifications,
listed, and returned byte for byte only when they still have the SHA-256 they were kept under."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from capa.app.core import Core
from capa.app.operations import operation
from capa.app.records import record_view
from capa.domain.errors import IntegrityFailure, InvalidInput, NotFound
from capa.domain.evidence import EvidenceFile
from capa.domain.parts import EvidenceRef

MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class Evidence:
    """The evidence files of the core's store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("evidence get")
    def evidence_content(self, sha256: str) -> bytes:
        return _content(self.core, sha256)

    @operation("evidence list")
    def evidence_list(self, ref: str) -> list[dict[str, Any]]:
        """The evidence files kept with a CA, or with the CAs linked to an NC (SPEC §10)."""
        return evidence_of(self._show, ref)

    @operation("evidence get")
    def evidence_file(self, ref: str, wanted: str) -> tuple[dict[str, Any], bytes]:
        """One evidence file of a record, by name or SHA-256, and its bytes, digest checked."""
        entry = chosen(evidence_of(self._show, ref), ref.strip().upper(), wanted)
        return entry, checked_content(lambda digest: _content(self.core, digest), entry)

    def _show(self, ref: str) -> Any:
        return record_view(self.core, ref)


def _content(core: Core, sha256: str) -> bytes:
    record = core.load(EvidenceFile, f"EVIDENCE-{sha256.lower()}")
    return base64.b64decode(record.content_b64)


def evidence_files(
    core: Core, paths: Sequence[str | Path]
) -> tuple[list[EvidenceFile], list[EvidenceRef]]:
    """The files to keep with a completion or verification (those the store does not hold
    yet), and the entries naming them in the record."""
    files: list[EvidenceFile] = []
    entries: list[EvidenceRef] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InvalidInput(f"evidence file {str(path)!r} does not exist")
        size = path.stat().st_size
        if size > MAX_EVIDENCE_BYTES:
            raise InvalidInput(f"evidence file {path.name!r} is larger than 25 MiB")
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        ref = f"EVIDENCE-{digest}"
        if not core.exists(ref) and all(f.ref != ref for f in files):
            files.append(EvidenceFile(ref=ref, sha256=digest, size=size,
                                      content_b64=base64.b64encode(content).decode()))
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        entries.append({"name": path.name, "size": size, "media_type": media_type,
                        "sha256": digest})
    return files, entries


def evidence_of(show: Callable[[str], Any], ref: str) -> list[dict[str, Any]]:
    """Every file kept with a CA (its action items and verifications), or with the CAs linked to
    an NC, in the order they were kept: name, size, media type, SHA-256, the CA and the step it
    was kept with, and who kept it when."""
    record = show(ref)
    cas = [record] if record.kind == "corrective-action" else [
        show(ca) for ca in record.linked_cas]
    found: list[dict[str, Any]] = []
    for ca in cas:
        for item in ca.items:
            found += [_entry(e, ca.id, f"action {item.number}", item.completed_by,
                             item.completed_at) for e in item.evidence]
        for number, check in enumerate(ca.verifications, start=1):
            found += [_entry(e, ca.id, f"verification {number}", check.signature.user_id,
                             check.signature.signed_at) for e in check.evidence]
    return sorted(found, key=lambda e: (e["attached_at"] or "", e["record"]))


def _entry(evidence: Any, ca: str, step: str, by: str | None, at: str | None) -> dict[str, Any]:
    return {"name": evidence.name, "size": evidence.size, "media_type": evidence.media_type,
            "sha256": evidence.sha256, "record": ca, "attached_to": step, "attached_by": by,
            "attached_at": at}


def chosen(entries: list[dict[str, Any]], ref: str, wanted: str) -> dict[str, Any]:
    """The one file of `entries` that `wanted` names, by SHA-256 or by file name."""
    text = wanted.strip()
    if _SHA256.match(text):
        matches = [e for e in entries if e["sha256"] == text.lower()]
    else:
        matches = [e for e in entries if e["name"] == text]
    if not matches:
        raise NotFound(f"{ref} has no evidence file {wanted!r}; capa evidence list {ref} shows "
                       "what it has")
    digests = sorted({e["sha256"] for e in matches})
    if len(digests) > 1:
        raise InvalidInput(f"{ref} has {len(digests)} different files named {wanted!r} "
                           f"(sha256 {', '.join(digests)}); give the SHA-256 of the one wanted")
    return matches[0]


def checked_content(content_of: Callable[[str], bytes], entry: dict[str, Any]) -> bytes:
    """The stored bytes of a file, refused (IntegrityFailure, exit 6) unless they have the
    SHA-256 and size the record kept them under."""
    digest = entry["sha256"]
    try:
        content = content_of(digest)
    except (binascii.Error, ValueError):
        raise IntegrityFailure(f"integrity check failed: the stored bytes of {entry['name']!r} "
                               f"(sha256 {digest}) cannot be read; nothing was written") from None
    except NotFound:
        raise IntegrityFailure(f"integrity check failed: {entry['record']} refers to "
                               f"{entry['name']!r} (sha256 {digest}), which the store does not "
                               "hold; nothing was written") from None
    if hashlib.sha256(content).hexdigest() != digest or len(content) != entry["size"]:
        raise IntegrityFailure(f"integrity check failed: the stored bytes of {entry['name']!r} "
                               f"no longer have their SHA-256 {digest}; nothing was written; "
                               "run capa audit verify")
    return content
