"""The ledger and the streaming verification on a store large enough to take the fast path
(whole 4096-leaf blocks) as well as the leaf-by-leaf path, checked against the reference
Merkle code of capa.audit.merkle.

SQLite only, on purpose: the 9,000 synthetic events are written straight into the SQLite file and
the reference leaves read back from it (Ledger.sqlite_path). Block-sized verification on
PostgreSQL is covered by test_audit_backends.py and the reliability suites."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.store import open_store
from capa.audit.checkpoints import CheckpointLog, make_checkpoint
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key, origin_of
from capa.audit.leaves import event_leaf_hash
from capa.audit.ledger import Ledger
from capa.audit.merkle import MerkleTree
from capa.audit.notes import create_checkpoint, sign_checkpoint
from capa.audit.verification import verify_store

EVENTS = 9_000  # two whole blocks, and a partial third


def synthetic_rows(count: int, start: int = 0) -> list[tuple[str, int, str, bytes]]:
    ids = [uuid.UUID(int=n + 1).hex for n in range(97)]
    rows = []
    for n in range(start, start + count):
        state = json.dumps({"n": n, "note": "é"}).encode() + b"\x00\xff"
        rows.append((ids[n % 97], n // 97 + 1, "capa.domain.nonconformity:Nonconformity.Amended",
                     state))
    return rows


@pytest.fixture
def big(tmp_path: Path) -> Iterator[tuple[Any, Path, Path]]:
    db = tmp_path / "big.db"
    app = open_store(str(db), create=True)
    with sqlite3.connect(db) as raw:
        raw.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", synthetic_rows(EVENTS))
    key = tmp_path / "big.db.key"
    create_store_key(key)
    yield app, key, tmp_path / "big.db.checkpoints"
    app.close()


def reference_leaves(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT originator_id, originator_version, topic, state FROM "
                           "stored_events ORDER BY rowid").fetchall()
    return [event_leaf_hash(p, r[0], r[1], r[2], r[3]) for p, r in enumerate(rows, start=1)]


def test_ledger_leaves_and_root_match_the_reference(big: tuple[Any, Path, Path]) -> None:
    app, key, log = big
    tree = Ledger(app).catch_up()
    leaves = reference_leaves(Path(str(Ledger(app).sqlite_path())))
    assert tree.size == EVENTS
    assert tree.root() == MerkleTree(leaves).root()
    assert Ledger(app).leaf_hashes(EVENTS) == b"".join(leaves)


@pytest.mark.parametrize("kept_size", [1, 4095, 4096, 5000, 8192, EVENTS])
def test_checkpoints_at_any_size_verify_and_are_consistent(
        big: tuple[Any, Path, Path], kept_size: int, tmp_path: Path) -> None:
    app, key, log = big
    private = load_private_key(key)
    leaves = reference_leaves(Path(str(Ledger(app).sqlite_path())))
    kept = tmp_path / "kept.txt"
    kept.write_text(sign_checkpoint(create_checkpoint(
        origin_of(private), kept_size, MerkleTree(leaves).root(kept_size)), private))
    make_checkpoint(app, key, log)
    # More events after the checkpoint: the ledger catches up only the new ones. They must be
    # events capa can read: verify decodes every event the checkpoints do not yet cover.
    with sqlite3.connect(str(Ledger(app).sqlite_path())) as raw:
        raw.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)",
                        [(uuid.uuid4().hex, 1, "capa.domain.nonconformity:Nonconformity.Amended",
                          json.dumps({"n": n}).encode()) for n in range(10)])
    summary = verify_store(app, private.public_key(), log, [kept])
    assert summary["events"] == EVENTS + 10
    assert summary["kept_checkpoints"][0]["size"] == kept_size


def test_a_kept_checkpoint_of_another_history_is_refused(
        big: tuple[Any, Path, Path], tmp_path: Path) -> None:
    app, key, log = big
    private = load_private_key(key)
    leaves = reference_leaves(Path(str(Ledger(app).sqlite_path())))
    leaves[4500] = event_leaf_hash(4501, "0" * 32, 1, "t", b"other")
    kept = tmp_path / "kept.txt"
    kept.write_text(sign_checkpoint(create_checkpoint(
        origin_of(private), 6000, MerkleTree(leaves).root(6000)), private))
    with pytest.raises(TamperDetected, match="history before it was rewritten"):
        verify_store(app, private.public_key(), log, [kept])


def test_a_change_deep_in_a_whole_block_is_located(big: tuple[Any, Path, Path]) -> None:
    app, key, log = big
    make_checkpoint(app, key, log)
    with sqlite3.connect(str(Ledger(app).sqlite_path())) as raw:
        state = raw.execute("SELECT state FROM stored_events WHERE rowid = 6001").fetchone()[0]
        raw.execute("UPDATE stored_events SET state = ? WHERE rowid = 6001", (state + b"\x00",))
    with pytest.raises(TamperDetected) as caught:
        verify_store(app, load_private_key(key).public_key(), log)
    assert caught.value.position == 6001
    assert caught.value.version == 6000 // 97 + 1
    assert len(CheckpointLog(log).notes()) == 1
