"""The store's own record: who set the store up, for which organisation, with which key.

Evidence files were defined here before they had a module of their own (capa.domain.evidence):
the events of earlier stores name them by this module, so their topics are registered here.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event
from eventsourcing.utils import register_topic

from capa.domain.errors import InvalidInput
from capa.domain.evidence import EvidenceFile
from capa.domain.record import Record, require_reason
from capa.domain.values import Profile, choice

__all__ = ["STORE_REF", "EvidenceFile", "StoreRecord"]

STORE_REF = "STORE"


class StoreRecord(Record):
    """The first record of every store: who set it up, for which organisation, with which key."""

    @classmethod
    def create(cls, *, ref: str, organisation: str, tool_version: str,
               key_fingerprint: str | None, signing: dict[str, Any] | None = None,
               profile: str = Profile.ISO9001.value) -> StoreRecord:
        return cls(ref=ref, organisation=organisation, tool_version=tool_version,
                   key_fingerprint=key_fingerprint, signing=signing,
                   profile=choice(Profile, profile, "profile").value)

    @event("StoreInitialised")
    def __init__(self, ref: str, organisation: str, tool_version: str,
                 key_fingerprint: str | None, signing: dict[str, Any] | None = None,
                 profile: str = Profile.ISO9001.value) -> None:
        self.ref = ref
        self.organisation = organisation
        self.tool_version = tool_version
        self.key_fingerprint = key_fingerprint
        # Stores made since digital signatures (SPEC §9.2): the scheme, and the first
        # administrator's id and public key, where every later key's chain of endorsements ends.
        self.signing = signing
        #: The standard the store is run under (SPEC §12); stores made before profiles are
        #: ISO 9001 stores.
        self.profile = profile
        self.status = "active"

    def change_profile(self, profile: str, reason: str) -> None:
        """Switch the store to another profile, with a recorded reason (SPEC §12)."""
        chosen = choice(Profile, profile, "profile").value
        if chosen == self.profile:
            raise InvalidInput(f"the store already has the {chosen} profile")
        self._profile_changed(previous=self.profile, profile=chosen,
                              reason=require_reason(reason, "changing the profile"))

    @event("ProfileChanged")
    def _profile_changed(self, previous: str, profile: str, reason: str) -> None:
        self.profile = profile


def _initialised_v1_v2(state: dict[str, Any]) -> None:
    """Stores made before digital signatures name no signing scheme."""
    state.setdefault("signing", None)


def _initialised_v2_v3(state: dict[str, Any]) -> None:
    """Stores made before profiles were ISO 9001 stores."""
    state.setdefault("profile", Profile.ISO9001.value)


StoreRecord.StoreInitialised.class_version = 3  # type: ignore[attr-defined]
StoreRecord.StoreInitialised.upcast_v1_v2 = staticmethod(  # type: ignore[attr-defined]
    _initialised_v1_v2)
StoreRecord.StoreInitialised.upcast_v2_v3 = staticmethod(  # type: ignore[attr-defined]
    _initialised_v2_v3)


#: Topics under which earlier stores hold evidence files (the aggregate, and its event through
#: it).
register_topic("capa.domain.store:EvidenceFile", EvidenceFile)
register_topic("capa.domain.store:EvidenceFile.EvidenceStored",
               EvidenceFile.EvidenceStored)  # type: ignore[attr-defined]
