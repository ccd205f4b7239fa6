"""Evidence files live in capa.domain.evidence; the topics earlier stores hold for them, under
capa.domain.store, still resolve to the same classes (the golden store proves it end to end)."""

from __future__ import annotations

from eventsourcing.utils import get_topic, resolve_topic

from capa.domain.evidence import EvidenceFile
from capa.domain.store import StoreRecord


def test_evidence_files_are_named_by_their_module() -> None:
    assert get_topic(EvidenceFile) == "capa.domain.evidence:EvidenceFile"
    assert get_topic(EvidenceFile.EvidenceStored) == (  # type: ignore[attr-defined]
        "capa.domain.evidence:EvidenceFile.EvidenceStored")


def test_the_topics_of_earlier_stores_resolve() -> None:
    assert resolve_topic("capa.domain.store:EvidenceFile") is EvidenceFile
    assert resolve_topic("capa.domain.store:EvidenceFile.EvidenceStored") is (
        EvidenceFile.EvidenceStored)  # type: ignore[attr-defined]
    assert resolve_topic("capa.domain.store:StoreRecord") is StoreRecord
