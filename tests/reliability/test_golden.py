"""The golden store (SPEC §4, §8): a store written by an early release, committed under
tests/golden, stays readable and verifiable. Each test works on a copy; the file itself is never
opened, so its bytes stay exactly as that release wrote them."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.domain.record import record_uuid
from tests.support.backends import cli_env
from tests.support.reading import reading

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "golden-v1.db"
FACTS: dict[str, Any] = json.loads(GOLDEN.with_suffix(".json").read_text())
RECORDS = [r for r in FACTS["records"] if r["kind"] in ("Nonconformity", "CorrectiveAction")]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "golden.db"
    shutil.copyfile(GOLDEN, target)
    return target


@pytest.fixture
def app(copy: Path) -> Any:
    opened = open_store(str(copy))
    yield opened
    opened.close()


def test_the_golden_file_is_unchanged_by_the_suite() -> None:
    with sqlite3.connect(f"file:{GOLDEN}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == FACTS["events"]


def test_every_stored_event_decodes(app: CapaApplication) -> None:
    notifications = app.recorder.select_notifications(start=1, limit=FACTS["events"] + 10)
    assert len(notifications) == FACTS["events"]
    for notification in notifications:
        app.mapper.to_domain_event(notification)


def test_every_record_loads_as_it_was(app: CapaApplication) -> None:
    for fact in FACTS["records"]:
        record: Any = app.repository.get(record_uuid(fact["id"]))
        assert (type(record).__name__, record.version) == (fact["kind"], fact["version"])
        assert getattr(record, "status", None) == fact["status"]


@pytest.mark.parametrize("fact", RECORDS, ids=lambda f: f["id"])
def test_every_record_shows_and_has_its_history(app: CapaApplication,
                                                fact: dict[str, Any]) -> None:
    with reading(app):
        view = app.records.show(fact["id"])
    assert (view.status, view.version) == (fact["status"], fact["version"])
    with reading(app):
        assert app.records.show(fact["id"], version=1).version == 1
        trail = app.records.history(fact["id"])
    assert [e.version for e in trail] == list(range(1, fact["version"] + 1))
    positions = [e.position for e in trail]
    assert positions == sorted(set(positions)) and positions[0] > 0
    assert all(e.actor and e.actor_name for e in trail)


def test_the_command_line_reads_and_verifies_the_golden_store(copy: Path,
                                                              tmp_path: Path) -> None:
    env = cli_env("sbauer")
    env["CAPA_PASSWORD"] = FACTS["password"]

    def capa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "capa", "--db", str(copy), "--json", *args],
                              env=env, capture_output=True, text=True, cwd=tmp_path, check=False)

    closed = next(r for r in RECORDS if r["kind"] == "CorrectiveAction")
    shown = capa("ca", "show", closed["id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == closed["status"]
    listed = capa("nc", "list")
    assert listed.returncode == 0, listed.stderr
    assert {r["id"] for r in json.loads(listed.stdout)} == \
        {r["id"] for r in RECORDS if r["kind"] == "Nonconformity"}
    if capa("audit", "verify", "--help").returncode != 0:
        pytest.skip("this build has no `capa audit verify`: the golden store was not verified")
    verified = capa("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["events"] == FACTS["events"]


# -- schema evolution: Nonconformity.Contained v1 → v2 (location) ----------------------------


def contained_events(app: CapaApplication) -> list[Any]:
    return [n for n in app.recorder.select_notifications(start=1, limit=FACTS["events"] + 10)
            if n.topic.endswith(":Nonconformity.Contained")]


def test_golden_containment_events_are_version_1_and_read_upcast(app: CapaApplication) -> None:
    from capa.domain.nonconformity import Nonconformity

    stored = contained_events(app)
    assert len(stored) == 3
    for notification in stored:
        # Written before the class had a version: no class_version, no location.
        assert b"class_version" not in notification.state
        assert b"location" not in notification.state
        event: Any = app.mapper.to_domain_event(notification)
        assert isinstance(event, Nonconformity.Contained)
        assert Nonconformity.Contained.class_version == 2
        assert event.location is None
        assert event.action


def test_signatures_over_upcast_records_still_match_their_content(app: CapaApplication) -> None:
    signed = 0
    for fact in RECORDS:
        with reading(app):
            for entry in app.records.history(fact["id"]):
                if entry.signature is None:
                    continue
                before: Any = app.repository.get(record_uuid(fact["id"]),
                                                 version=entry.signature.signed_version)
                assert before.content_digest() == entry.signature.content_sha256
                signed += 1
    assert signed >= 4


def test_new_containment_is_written_as_version_2(app: CapaApplication, copy: Path) -> None:
    from capa.domain.nonconformity import Nonconformity

    with app.acting_as("tokafor", FACTS["password"]):
        nc = app.nonconformities.raise_nc(title="Scratched lens", description="Found at packing",
                                          source="process", severity="minor").id
        record: Any = app.repository.get(record_uuid(nc))
        assert isinstance(record, Nonconformity)
        record.contain("Moved to bay 4", "quarantine", "Bay 4")
        app.save(record)
    newest = contained_events(app)[-1]
    assert b'"class_version":2' in newest.state.replace(b" ", b"")
    reopened = open_store(str(copy))
    try:
        loaded: Any = reopened.repository.get(record_uuid(nc))
        assert loaded.containment[-1]["location"] == "Bay 4"
        old: Any = reopened.repository.get(record_uuid(RECORDS[0]["id"]))
        assert old.containment and all("location" not in c for c in old.containment)
    finally:
        reopened.close()


def test_a_bundle_of_the_golden_store_verifies_with_both_verifiers(app: CapaApplication,
                                                                   copy: Path,
                                                                   tmp_path: Path) -> None:
    """Its version 1 containment events show as stored (no location), which is what both
    verifiers derive from the bytes."""
    from capa.audit.bundle import export_bundle, verify_bundle
    from capa.audit.checkpoints import CheckpointLog
    from capa.audit.keys import create_store_key, public_key_for

    key, log = Path(f"{copy}.key"), CheckpointLog(Path(f"{copy}.checkpoints"))
    # A key and its (empty) checkpoint log, as `capa init` makes them: a key found beside a
    # store is held to a log (SPEC §9.4).
    create_store_key(key)
    log.create()
    out = tmp_path / "golden-bundle"
    public = public_key_for(key)
    assert public is not None
    export_bundle(app, out, key, log.path, public)
    lines = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    contained = [line for line in lines if line["type"] == "Nonconformity.Contained"]
    assert len(contained) == 3 and all("location" not in line["data"] for line in contained)
    assert verify_bundle(out, [], None)["events"] == FACTS["events"]
    script = Path(__file__).resolve().parents[2] / "scripts" / "verify_bundle.py"
    done = subprocess.run([sys.executable, "-I", str(script), str(out)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
