"""The application on eventsourcing's in-memory store: no database file, no server.

An NC is raised, contained, assessed and closed with a CA through its whole lifecycle, with
signatures, as on a real store; lists, overdue items and the CSV export read the in-memory
log too, and the store's tables beside the log (accounts' secrets, keys, read tables) live in
its private in-memory database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from capa.adapters.eventlog import backend_of, positions_of
from capa.app.application import CapaApplication
from capa.app.store import open_memory_store
from capa.domain.record import record_uuid
from tests.support.reading import reading

PASSWORD = "correct-horse-battery-staple"
ADMIN, QUALITY, OWNER, REPORTER = "mhernandez", "jchen", "apatel", "tokafor"
YEAR = dt.datetime.now(dt.UTC).year


def _days(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CapaApplication]:
    monkeypatch.chdir(tmp_path)
    store = open_memory_store()
    store.identity.initialise("Northwind Medical Devices", admin=ADMIN, full_name="Maria Hernandez",
                              password=PASSWORD)
    with store.acting_as(ADMIN, PASSWORD):
        store.identity.grant_role(ADMIN, "quality")
        store.identity.add_user(QUALITY, full_name="Jun Chen", roles=["quality"], password=PASSWORD)
        store.identity.add_user(OWNER, full_name="Anil Patel", roles=["owner"], password=PASSWORD)
        store.identity.add_user(REPORTER, full_name="Tolu Okafor", roles=["reporter"],
                                password=PASSWORD)
    yield store
    store.close()
    assert list(tmp_path.iterdir()) == []  # nothing was written to disk


def test_the_store_is_held_in_memory(app: CapaApplication) -> None:
    assert backend_of(app) == "memory"
    assert app.identity.authenticate(QUALITY, PASSWORD) == QUALITY
    with app.acting_as(ADMIN, PASSWORD):
        assert app.store_info()["organisation"] == "Northwind Medical Devices"


def test_an_nc_and_its_ca_are_raised_contained_and_closed(app: CapaApplication) -> None:
    with app.acting_as(REPORTER, PASSWORD):
        nc = app.nonconformities.raise_nc(title="Cracked housing",
                                          description="Hairline crack at boss B2",
                                          source="customer-complaint", severity="major").id
        assert nc == f"NC-{YEAR}-0001"
        assert app.nonconformities.contain_nc(nc, action="Lot quarantined",
                                              disposition="quarantine").status == "contained"
    with app.acting_as(QUALITY, PASSWORD):
        assert app.nonconformities.assess_nc(nc, impact=4, likelihood=3,
                                             capa_required=True).status \
            == "assessed"
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Cracks at boss B2",
                                            owner=OWNER,
                                            ncs=[nc]).id
    assert ca == f"CA-{YEAR}-0001"
    with app.acting_as(OWNER, PASSWORD):
        app.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["Boss cracks",
                                                                        "Wall too thin"])
        app.corrective_actions.plan_ca(ca, action="Replace gate insert", assignee=OWNER,
                                       due=_days(20),
                                       action_type="corrective")
    with app.acting_as(ADMIN, PASSWORD):
        assert app.corrective_actions.approve_ca(ca).status == "approved"
    with app.acting_as(OWNER, PASSWORD):
        assert app.corrective_actions.complete_action(
            ca, "A1", note="Insert replaced").status == "implemented"
    with app.acting_as(QUALITY, PASSWORD):
        assert app.corrective_actions.verify_ca(ca, effective=True,
                                                note="No cracks in 3 lots").status \
            == "verified"
    with app.acting_as(ADMIN, PASSWORD):
        closed = app.corrective_actions.close_ca(ca)
    assert (closed.status, closed.as_dict()["closed_ncs"]) == ("closed", [nc])

    with app.acting_as(QUALITY, PASSWORD):
        nc_view, ca_view = app.records.show(nc), app.records.show(ca)
        listed = app.queries.list_records("nc", statuses=[], severities=[], sources=[],
                                          overdue=False)
    assert nc_view.status == "closed"
    assert nc_view.closure is not None and nc_view.closure.with_ca == ca
    assert ca_view.closure is not None and ca_view.closure.signature.user_id == ADMIN
    assert [(item.id, item.status) for item in listed] == [(nc, "closed")]
    assert sorted(positions_of(app.recorder, record_uuid(nc))) == list(
        range(1, nc_view.version + 1))
    with reading(app):
        exported = {row["id"]: row["status"] for row in app.intake.export_records()}
    assert exported == {nc: "closed", ca: "closed"}


def test_an_nc_needing_no_ca_is_closed(app: CapaApplication) -> None:
    with app.acting_as(REPORTER, PASSWORD):
        nc = app.nonconformities.raise_nc(title="Scuffed label",
                                          description="Label scuffed in transit",
                                          source="internal-audit", severity="minor").id
    with app.acting_as(QUALITY, PASSWORD):
        app.nonconformities.assess_nc(nc, impact=1, likelihood=2, capa_required=False,
                                      rationale="Cosmetic, caught before release")
        assert app.nonconformities.close_nc(nc).status == "closed"
        overdue = app.queries.overdue()
    assert overdue == []


def test_each_memory_store_is_its_own(app: CapaApplication) -> None:
    other = open_memory_store()
    try:
        assert other.credentials.get_hash(ADMIN, "x") is None
        with app.acting_as(REPORTER, PASSWORD):
            app.nonconformities.raise_nc(title="Cracked housing", description="Crack",
                                         source="customer-complaint", severity="major")
        assert other.recorder.max_notification_id() is None
    finally:
        other.close()


def test_a_bulk_import_lands_in_memory_and_is_skipped_when_run_again(
        app: CapaApplication) -> None:
    rows = [{"title": f"Burr {n}", "description": "Edge rough", "source": "process",
             "severity": "minor", "external_ref": f"Q-{n}"} for n in range(1, 4)]
    with app.acting_as(REPORTER, PASSWORD):
        first = app.intake.import_ncs(rows, {})
        again = app.intake.import_ncs(rows, {})
    assert (first.imported, first.first_id, first.last_id) == (
        3, f"NC-{YEAR}-0001", f"NC-{YEAR}-0003")
    assert (again.imported, again.skipped_existing) == (0, 3)
    with app.acting_as(QUALITY, PASSWORD):
        assert app.records.show(f"NC-{YEAR}-0002").external_ref == "Q-2"


def test_the_back_end_is_named_once_for_targets_and_applications(tmp_path: Path) -> None:
    from capa.adapters.target import parse_target

    assert backend_of(parse_target(str(tmp_path / "capa.db"))) == "sqlite"
    assert backend_of(parse_target("postgresql://capa@db.example/capa")) == "postgres"
    with pytest.raises(TypeError):
        backend_of(object())
