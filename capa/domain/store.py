"""The store's own record and content-addressed evidence files."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from capa.domain.record import Record

STORE_REF = "STORE"


class StoreRecord(Record):
    """The first record of every store: who set it up, for which organisation, with which key."""

    @event("StoreInitialised")
    def __init__(self, ref: str, organisation: str, tool_version: str,
                 key_fingerprint: str | None, signing: dict[str, Any] | None = None) -> None:
        self.ref = ref
        self.organisation = organisation
        self.tool_version = tool_version
        self.key_fingerprint = key_fingerprint
        # Stores made since digital signatures (SPEC §9.2): the scheme, and the first
        # administrator's id and public key, where every later key's chain of endorsements ends.
        self.signing = signing
        self.status = "active"


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


def _initialised_v1_v2(state: dict[str, Any]) -> None:
    """Stores made before digital signatures name no signing scheme."""
    state.setdefault("signing", None)


StoreRecord.StoreInitialised.class_version = 2  # type: ignore[attr-defined]
StoreRecord.StoreInitialised.upcast_v1_v2 = staticmethod(  # type: ignore[attr-defined]
    _initialised_v1_v2)
