"""Rows capa never writes (SPEC §9, exit 6): a SQLite state rewritten as TEXT, an INTEGER or
NULL, and bytes that are not an event on both back ends. `audit verify` names the position
(exit 6, "mismatch:"), and commands that read the record stop with exit 6 instead of an
unexpected error; nothing is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from capa.audit.checkpoints import make_checkpoint
from capa.audit.errors import TamperDetected
from capa.audit.keys import create_store_key, load_private_key
from capa.audit.verification import verify_store
from tests.support.backends import (
    ADMIN,
    PASSWORD,
    REPORTER,
    close_all,
    create_store,
    event_count,
    query,
    run_cli,
)


@pytest.fixture
def store(store_target: str) -> Iterator[CapaApplication]:
    app = create_store(store_target)
    yield app
    close_all([app])


def raised(app: CapaApplication) -> str:
    with app.acting_as(REPORTER, PASSWORD):
        return app.nonconformities.raise_nc(title="Burr on flange", description="Seen at goods-in",
                                            source="supplier", severity="minor").id


def last_position(target: str) -> int:
    return int(query(target, "SELECT MAX(rowid) FROM stored_events")[0][0])


def assert_integrity_failure(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 6, (done.returncode, done.stderr)
    assert done.stdout == ""
    message = json.loads(done.stderr)["error"]["message"]
    assert message.startswith("integrity check failed:") and "mismatch:" in message
    assert "Traceback" not in done.stderr and "unexpected error" not in message
    for word in words:
        assert word in message, message


#: A value SQL can put where capa writes a BLOB, and how verify names it.
_OTHER_TYPES = {"CAST(state AS TEXT)": "TEXT", "12": "an INTEGER", "1.5": "a REAL"}


@pytest.mark.sqlite_only("only SQLite lets a column hold TEXT where capa writes a BLOB")
@pytest.mark.parametrize("value", sorted(_OTHER_TYPES))
@pytest.mark.parametrize("where", ["last", "first"])
def test_a_state_of_another_type_is_an_integrity_failure(backend: str, store: CapaApplication,
                                                         store_target: str, tmp_path: Path,
                                                         value: str, where: str) -> None:
    ref = raised(store)
    position = last_position(store_target) if where == "last" else 1
    query(store_target, f"UPDATE stored_events SET state = {value} WHERE rowid = ?", position)
    before = event_count(store_target)
    assert_integrity_failure(run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path),
                             f"position {position} ",
                             f"the stored state is {_OTHER_TYPES[value]},")
    if where == "last":
        for command in (["nc", "show", ref], ["history", ref]):
            assert_integrity_failure(run_cli(store_target, ADMIN, command, cwd=tmp_path),
                                     "cannot be read")
    assert event_count(store_target) == before


@pytest.mark.parametrize("garbage", [b"\xff\xfe\x00", b"not json", b"[1, 2]", b'{"a": '])
def test_bytes_that_are_not_an_event_fail_verify(store: CapaApplication, store_target: str,
                                                 tmp_path: Path, garbage: bytes) -> None:
    """Rewritten before anything checkpointed it, the row is taken into the ledger as it is;
    verification still refuses it because capa cannot read it."""
    ref = raised(store)
    position = last_position(store_target)
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?", garbage, position)
    before = event_count(store_target)
    assert_integrity_failure(run_cli(store_target, ADMIN, ["audit", "verify"], cwd=tmp_path),
                             "not an event capa can read")
    assert_integrity_failure(run_cli(store_target, ADMIN, ["nc", "show", ref], cwd=tmp_path),
                             "cannot be read")
    assert event_count(store_target) == before


def test_an_unreadable_row_after_the_last_checkpoint_fails_verify(
        store: CapaApplication, store_target: str, tmp_path: Path) -> None:
    """With a checkpoint, only the events after it need reading; the row after it does."""
    key, log = tmp_path / "store.key", tmp_path / "store.checkpoints"
    create_store_key(key)
    make_checkpoint(store, key, log)
    checked = verify_store(store, load_private_key(key).public_key(), log)
    assert checked["latest_checkpoint"] == event_count(store_target)
    raised(store)
    position = last_position(store_target)
    query(store_target, "UPDATE stored_events SET state = ? WHERE rowid = ?", b"{}}", position)
    with pytest.raises(TamperDetected) as caught:
        verify_store(store, load_private_key(key).public_key(), log)
    assert caught.value.position == event_count(store_target)
    assert "mismatch:" in str(caught.value)
