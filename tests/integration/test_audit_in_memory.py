"""The audit service on eventsourcing's in-memory store (SPEC §5, §9): the ledger, checkpoints,
verification, proofs and the signature walk run there as on SQLite and PostgreSQL, so service
tests of the audit need no database; a signature forged through the library is still caught."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.store import open_memory_store
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.domain.nonconformity import Nonconformity
from capa.domain.record import actor_id

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def store() -> Iterator[CapaApplication]:
    app = open_memory_store()
    app.identity.initialise("Memory Medical", admin="admin1", full_name="Ada Admin",
                            password=PASSWORD)
    with app.acting_as("admin1", PASSWORD):
        app.identity.add_user("quality1", full_name="Quinn Quality", roles=["quality"],
                              password=PASSWORD)
    yield app
    app.close()


def closed_nc(app: CapaApplication, title: str) -> str:
    with app.acting_as("quality1", PASSWORD):
        ref = app.nonconformities.raise_nc(title=title, description="Seen at goods-in",
                                           source="supplier", severity="minor").id
        app.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                      rationale="cosmetic")
        app.nonconformities.close_nc(ref)
    return ref


def test_checkpoint_verify_and_prove_on_the_in_memory_store(store: CapaApplication,
                                                           tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    public = load_private_key(key).public_key()
    first = closed_nc(store, "Burr on flange")
    with store.acting_as("admin1", PASSWORD):
        older = store.audit.checkpoint(key, log)
        closed_nc(store, "Scratch on cover")
        newer = store.audit.checkpoint(key, log)
        summary = store.audit.verify(public, log)
        proof = store.audit.prove(first, log, public)
    assert newer["size"] > older["size"] == 6
    assert summary["status"] == "verified" and summary["events"] == newer["size"]
    assert summary["checkpoints"] == 2 and summary["signatures"]["digital"] == 2
    assert summary["caches_checked"]["read_table_records"] >= 0
    assert proof["id"] == first and len(proof["events"]) == 3
    assert proof["tree_size"] == newer["size"]


def test_a_signature_forged_through_the_library_is_caught_in_memory(
        store: CapaApplication, tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    public = load_private_key(key).public_key()
    with store.acting_as("quality1", PASSWORD):
        ref = store.nonconformities.raise_nc(title="Crack", description="At final inspection",
                                             source="internal-audit", severity="minor").id
        store.nonconformities.assess_nc(ref, impact=1, likelihood=1, capa_required=False,
                                        rationale="cosmetic")
    nc: Any = store.repository.get(store.load(Nonconformity, ref).id)
    token = actor_id.set("quality1")
    try:
        # A closure in quality1's name with no digital signature: written past capa's checks.
        nc.close({"user_id": "quality1", "full_name": "Quinn Quality", "meaning": "approval",
                  "content_sha256": nc.content_digest(), "signed_version": nc.version})
        store.save(nc)
    finally:
        actor_id.reset(token)
    with store.acting_as("admin1", PASSWORD):
        store.audit.checkpoint(key, log)
        with pytest.raises(TamperDetected) as caught:
            store.audit.verify(public, log)
    assert ref in str(caught.value)
