"""The store's own record: who set the store up, for which organisation, with which key.

Evidence files were defined here before they had a module of their own (capa.domain.evidence):
the events of earlier stores name them by this module, so their topics are registered here.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event
from eventsourcing.utils import register_topic

from capa.domain.evidence import EvidenceFile
from capa.domain.record import Record

__all__ = ["STORE_REF", "EvidenceFile", "StoreRecord"]

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


def _initialised_v1_v2(state: dict[str, Any]) -> None:
    """Stores made before digital signatures name no signing scheme."""
    state.setdefault("signing", None)


StoreRecord.StoreInitialised.class_version = 2  # type: ignore[attr-defined]
StoreRecord.StoreInitialised.upcast_v1_v2 = staticmethod(  # type: ignore[attr-defined]
    _initialised_v1_v2)


#: Topics under which earlier stores hold evidence files (the aggregate, and its event through
#: it).
register_topic("capa.domain.store:EvidenceFile", EvidenceFile)
register_topic("capa.domain.store:EvidenceFile.EvidenceStored",
               EvidenceFile.EvidenceStored)  # type: ignore[attr-defined]
