"""Read models on a real SQLite file: lists and overdue come from projections that follow the
event log, agree with the records themselves, and rebuild to the same answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from capa.app.application import CapaApplication
from tests.support.cast import OWNER, QUALITY_ENGINEER, REPORTER, TECHNICIAN
from tests.support.reading import reading
from tests.support.stores import Store, app, store

__all__ = ["app", "store"]


def _day(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


def _story(store: Store, app: CapaApplication) -> dict[str, str]:
    with store.acting(app, REPORTER):
        a = app.nonconformities.raise_nc(title="Cracked housing", description="Boss B2 cracked",
                                         source="customer-complaint", severity="major",
                                         product="IP-200",
                                         external_ref="COMP-1").id
        b = app.nonconformities.raise_nc(title="Resin out of spec", description="MFI 14.2",
                                         source="supplier", severity="critical",
                                         product="IP-200").id
        c = app.nonconformities.raise_nc(title="Label smudged", description="Print head dirty",
                                         source="process", severity="minor").id
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.assess_nc(a, impact=4, likelihood=3, capa_required=True)
        app.nonconformities.assess_nc(b, impact=3, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Bosses crack",
                                            owner=OWNER,
                                            ncs=[a, b]).id
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="ishikawa", root_cause="Worn gate insert",
                                              category="machine")
        app.corrective_actions.plan_ca(ca, action="Replace insert", assignee=TECHNICIAN,
                                       due=_day(-3),
                                       action_type="corrective",
                                       past_due_reason="an overdue item to read")
        app.corrective_actions.plan_ca(ca, action="Review PFMEA", assignee=OWNER, due=_day(10),
                                       action_type="preventive")
    with store.acting(app, QUALITY_ENGINEER):
        app.corrective_actions.approve_ca(ca)
    return {"a": a, "b": b, "c": c, "ca": ca}


def _dump(values: list[Any]) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in values]


def test_lists_match_the_records_and_filters(store: Store, app: CapaApplication) -> None:
    refs = _story(store, app)
    with reading(app):
        ncs = app.queries.list_records("nc")
    assert [v.id for v in ncs] == [refs["a"], refs["b"], refs["c"]]
    # Each listed record is exactly what `show` rebuilds from its events.
    with reading(app):
        for view in [*ncs, *app.queries.list_records("ca")]:
            assert view.model_dump() == app.records.show(view.id).model_dump()
        assert [v.id for v in app.queries.list_records("nc", statuses=["open"])] == [refs["c"]]
        critical = app.queries.list_records("nc", severities=["critical"])
        assert [v.id for v in critical] == [refs["b"]]
        overdue = app.queries.list_records("nc", overdue=True)
        assert [v.id for v in overdue] == [refs["a"], refs["b"]]
        assert [v.id for v in app.queries.list_records("ca", sources=["supplier"])] == [refs["ca"]]
        assert app.queries.list_records("ca", sources=["internal-audit"]) == []
        assert [v.id for v in app.queries.list_records("ca", overdue=True)] == [refs["ca"]]
        overdue = app.queries.overdue()
    assert [(o.kind, o.ca, o.action, o.days_overdue) for o in overdue] == [
        ("action-overdue", refs["ca"], "A1", 3)]


def test_a_second_process_sees_writes_of_the_first(store: Store, app: CapaApplication) -> None:
    refs = _story(store, app)
    other = store.app()
    with reading(other):
        assert len(other.queries.list_records("nc")) == 3
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.cancel_nc(refs["c"], reason="Raised in error")
    with reading(other):
        cancelled = other.queries.list_records("nc", statuses=["cancelled"])
        assert [v.status for v in cancelled] == ["cancelled"]


def test_rebuild_gives_identical_answers(store: Store, app: CapaApplication) -> None:
    _story(store, app)
    with reading(app):
        before = (_dump(app.queries.list_records("nc")), _dump(app.queries.list_records("ca")),
                  _dump(app.queries.overdue()))
    tables = {t: store.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in
              ("nc_summary", "ca_summary", "action_items", "nc_ca_links")}
    with store.acting(app, QUALITY_ENGINEER):
        result = app.queries.rebuild_read_models()
    assert result["nonconformities"] == 3 and result["corrective_actions"] == 1
    with reading(app):
        after = (_dump(app.queries.list_records("nc")), _dump(app.queries.list_records("ca")),
                 _dump(app.queries.overdue()))
    assert after == before
    assert tables == {t: store.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}


def test_tracked_position_commits_with_the_tables(store: Store, app: CapaApplication) -> None:
    _story(store, app)
    with reading(app):
        app.queries.list_records("nc")
    position = store.rows("SELECT position FROM rm_tracking")[0][0]
    latest = store.rows("SELECT MAX(rowid) FROM stored_events")[0][0]
    assert position == latest
    # A follower that lost its place (as after a crash before commit) simply catches up again.
    store.rows("UPDATE rm_tracking SET position = 0")
    again = store.app()
    with reading(again):
        assert len(again.queries.list_records("nc")) == 3
    assert store.rows("SELECT COUNT(*) FROM nc_summary") == [(3,)]


def test_cause_category_follows_the_linked_ca(store: Store, app: CapaApplication) -> None:
    refs = _story(store, app)
    with reading(app):
        app.queries.list_records("nc")
    rows = dict(store.rows("SELECT id, cause_category FROM nc_summary"))
    assert rows == {refs["a"]: "machine", refs["b"]: "machine", refs["c"]: None}
