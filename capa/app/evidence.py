"""Evidence back out (SPEC §10): the files kept with a record's actions and verifications,
listed, and returned byte for byte only when they still have the SHA-256 they were kept under."""

from __future__ import annotations

import binascii
import hashlib
import re
from typing import Any

from capa.domain.errors import IntegrityFailure, InvalidInput, NotFound

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def evidence_of(app: Any, ref: str) -> list[dict[str, Any]]:
    """Every file kept with a CA (its action items and verifications), or with the CAs linked to
    an NC, in the order they were kept: name, size, media type, SHA-256, the CA and the step it
    was kept with, and who kept it when."""
    record = app.show(ref)
    cas = [record] if record.kind == "corrective-action" else [
        app.show(ca) for ca in record.linked_cas]
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


def checked_content(app: Any, entry: dict[str, Any]) -> bytes:
    """The stored bytes of a file, refused (IntegrityFailure, exit 6) unless they have the
    SHA-256 and size the record kept them under."""
    digest = entry["sha256"]
    try:
        content: bytes = app.evidence_content(digest)
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
