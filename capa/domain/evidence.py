"""Evidence files: content kept once per SHA-256 inside the event log, so the ledger covers it.

Stores made before this module held them under `capa.domain.store`, whose topics still resolve
(registered there).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from capa.domain.record import Record

__all__ = ["EvidenceFile"]


class EvidenceFile(Record):
    """File content stored once per SHA-256, inside the event log so the ledger covers it."""

    @event("EvidenceStored")
    def __init__(self, ref: str, sha256: str, size: int, content_b64: str) -> None:
        self.ref = ref
        self.sha256 = sha256
        self.size = size
        self.content_b64 = content_b64
        self.status = "stored"

    def fields(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "status": self.status}
