"""`capa store copy`: every event, in order and byte for byte, between SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capa.app.application import CapaApplication
from capa.app.store import open_store
from capa.app.storecopy import copy_store, verify_copy
from capa.domain.errors import InvalidInput, NotPermitted
from capa.domain.record import record_uuid
from tests.support.backends import (
    ADMIN,
    ENGINEER,
    PASSWORD,
    REPORTER,
    create_store,
    event_rows,
    new_target,
    run_cli,
)
from tests.support.reading import reading


def fill(app: CapaApplication, count: int) -> list[str]:
    refs = []
    with app.acting_as(REPORTER, PASSWORD):
        for i in range(count):
            refs.append(app.nonconformities.raise_nc(title=f"Burr on part {i}",
                                                     description="Deburr skipped",
                                                     source="process", severity="minor").id)
        app.nonconformities.contain_nc(refs[0], action="Sorted")
    with app.acting_as(ENGINEER, PASSWORD):
        app.nonconformities.assess_nc(refs[0], impact=2, likelihood=2, capa_required=False,
                                      rationale="Minor")
    return refs


def same_log(a: str, b: str) -> None:
    # Positions may differ (a PostgreSQL sequence can skip); order and bytes may not.
    assert [row[1:] for row in event_rows(a)] == [row[1:] for row in event_rows(b)]


@pytest.mark.parametrize(("there", "back"), [("postgres", "sqlite"), ("sqlite", "postgres")])
def test_a_store_goes_there_and_back_unchanged(tmp_path: Path, there: str, back: str) -> None:
    source = new_target("sqlite" if there == "postgres" else "postgres", tmp_path, "source.db")
    app = create_store(source)
    refs = fill(app, 7)
    middle = new_target(there, tmp_path, "middle.db")
    final = new_target(back, tmp_path, "final.db")
    with app.acting_as(ADMIN, PASSWORD):
        report = copy_store(app, middle, batch_size=3)
    assert report.verified and report.events == report.copied == len(event_rows(source))
    app.close()

    middle_app = open_store(middle)
    with middle_app.acting_as(ADMIN, PASSWORD):
        copy_store(middle_app, final)
        assert middle_app.records.show(refs[0]).status == "assessed"
    middle_app.close()
    same_log(source, middle)
    same_log(source, final)

    final_app = open_store(final)
    try:
        with reading(final_app):
            assert [e.version for e in final_app.records.history(refs[0])] == [1, 2, 3]
            assert [v.id for v in final_app.queries.list_records("nc")] == refs
        with final_app.acting_as(REPORTER, PASSWORD):
            # The copy is a working store: numbering carries on after the copied records.
            assert final_app.nonconformities.raise_nc(title="Next", description="d",
                                                      source="process",
                                                      severity="minor").id.endswith("-0008")
    finally:
        final_app.close()


def test_an_interrupted_copy_carries_on_and_a_foreign_store_is_refused(tmp_path: Path) -> None:
    source = new_target("sqlite", tmp_path, "source.db")
    app = create_store(source)
    fill(app, 3)
    target = new_target("postgres", tmp_path)
    # An interrupted copy: the first five events only.
    partial = open_store(target, create=True)
    partial.recorder.insert_events(
        [_stored(n) for n in app.recorder.select_notifications(start=1, limit=5)])
    partial.close()
    with app.acting_as(ADMIN, PASSWORD):
        report = copy_store(app, target)
    assert report.copied == report.events - 5
    same_log(source, target)

    other = new_target("sqlite", tmp_path, "other.db")
    create_store(other, {"someone": ("Some One", ["admin"])}).close()
    with app.acting_as(ADMIN, PASSWORD), pytest.raises(InvalidInput, match="other events"):
        copy_store(app, other)
    with app.acting_as(REPORTER, PASSWORD), pytest.raises(NotPermitted):
        copy_store(app, new_target("sqlite", tmp_path, "never.db"))
    assert not (tmp_path / "never.db").exists()
    app.close()


def test_verification_names_the_first_difference(tmp_path: Path) -> None:
    source = new_target("sqlite", tmp_path, "source.db")
    app = create_store(source)
    fill(app, 2)
    copy = new_target("sqlite", tmp_path, "copy.db")
    with app.acting_as(ADMIN, PASSWORD):
        copy_store(app, copy)
    fill(app, 1)
    copied = open_store(copy)
    with pytest.raises(InvalidInput, match="differs from the source at event"):
        verify_copy(app, copied)
    copied.close()
    app.close()


def test_the_command_copies_and_prints_a_report(tmp_path: Path) -> None:
    source = new_target("postgres", tmp_path)
    app = create_store(source)
    ref = fill(app, 2)[0]
    app.close()
    target = str(tmp_path / "copy.db")
    done = run_cli(source, ADMIN, ["store", "copy", "--to", target])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and report["copied"] == report["events"]
    assert "***" in report["source"] and PASSWORD not in done.stdout
    same_log(source, target)
    rows = [r for r in event_rows(target) if r[1] == record_uuid(ref)]
    assert [r[2] for r in rows] == [1, 2, 3]
    refused = run_cli(source, REPORTER, ["store", "copy", "--to", str(tmp_path / "x.db")])
    assert refused.returncode == 4 and not (tmp_path / "x.db").exists()


def _stored(notification: object) -> object:
    from eventsourcing.persistence import StoredEvent

    n: object = notification
    return StoredEvent(originator_id=n.originator_id,  # type: ignore[attr-defined]
                       originator_version=n.originator_version,  # type: ignore[attr-defined]
                       topic=n.topic, state=n.state)  # type: ignore[attr-defined]
