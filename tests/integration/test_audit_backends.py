"""The audit ledger, checkpoints and verification on SQLite and on PostgreSQL alike, with the
event table edited directly on each back end (SPEC §8 tamper suite)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.store import EVENTS_TABLE
from capa.audit.checkpoints import make_checkpoint
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.verification import verify_store
from tests.support.backends import (
    ADMIN,
    BACKENDS,
    PASSWORD,
    REPORTER,
    close_all,
    create_store,
    event_rows,
    new_target,
)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_target(request.param, tmp_path)


@pytest.fixture
def app(target: str) -> Iterator[CapaApplication]:
    created = create_store(target)
    yield created
    close_all([created])


def raise_ncs(app: CapaApplication, count: int) -> None:
    with app.acting_as(REPORTER, PASSWORD):
        for n in range(count):
            app.nonconformities.raise_nc(title=f"Finding {n}", description="Seen at goods-in",
                                         source="supplier", severity="minor")


def set_state(target: str, position: int, state: bytes) -> None:
    if parse_target(target).kind == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db, db:
            db.execute(f"UPDATE {EVENTS_TABLE['sqlite']} SET state = ? WHERE rowid = ?",
                       (state, position))
        return
    with psycopg.connect(target) as conn:
        conn.execute(f"UPDATE {EVENTS_TABLE['postgres']} SET state = %s "
                     "WHERE notification_id = %s", (state, position))


def delete_event(target: str, position: int) -> None:
    if parse_target(target).kind == "sqlite":
        with contextlib.closing(sqlite3.connect(target)) as db, db:
            db.execute(f"DELETE FROM {EVENTS_TABLE['sqlite']} WHERE rowid = ?", (position,))
        return
    with psycopg.connect(target) as conn:
        conn.execute(f"DELETE FROM {EVENTS_TABLE['postgres']} WHERE notification_id = %s",
                     (position,))


def test_clean_store_verifies_and_edits_are_located(
        target: str, app: CapaApplication, tmp_path: Path) -> None:
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    public = load_private_key(key).public_key()
    raise_ncs(app, 5)
    first = make_checkpoint(app, key, log)
    raise_ncs(app, 3)
    summary = verify_store(app, public, log)
    rows = event_rows(target)
    assert summary["events"] == len(rows) == first["size"] + 3

    position, _, version, _, state = rows[-4]  # covered by the checkpoint
    set_state(target, position, state.replace(b"minor", b"major"))
    with pytest.raises(TamperDetected) as caught:
        verify_store(app, public, log)
    assert caught.value.position == len(rows) - 3
    assert caught.value.version == version
    assert caught.value.record is not None and caught.value.record.startswith("NC-")

    set_state(target, position, state)
    assert verify_store(app, public, log)["events"] == len(rows)
    delete_event(target, rows[2][0])
    with pytest.raises(TamperDetected) as caught:
        verify_store(app, public, log)
    assert caught.value.position == 3
    assert ADMIN  # the cast's administrator made the store
