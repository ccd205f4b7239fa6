"""The read side on both back ends: lists, overdue, rebuild, import, export and the dashboard
figures give the same answers on a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capa.app.application import CapaApplication
from capa.reports.dashboard import collect
from tests.support.backends import (
    ADMIN,
    BACKENDS,
    OWNER,
    PASSWORD,
    REPORTER,
    create_store,
    new_target,
)
from tests.support.reading import reading


def _day(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CapaApplication]:
    created = create_store(new_target(request.param, tmp_path))
    yield created
    created.close()


def _answers(app: CapaApplication) -> tuple[Any, ...]:
    with reading(app):
        return ([v.model_dump() for v in app.queries.list_records("nc")],
                [v.model_dump() for v in app.queries.list_records("ca", severities=["major"])],
                [v.id for v in app.queries.list_records("nc", overdue=True)],
                [o.model_dump() for o in app.queries.overdue()])


def test_the_read_side_on_each_back_end(app: CapaApplication) -> None:
    rows = [{"external_ref": f"R-{i}", "title": f"Defect {i}", "description": "Seen",
             "source": ("process", "supplier")[i % 2], "severity": "major",
             "product": "P-1", "detected_on": "2024-03-0" + str(1 + i % 9)} for i in range(12)]
    with app.acting_as(REPORTER, PASSWORD):
        report = app.intake.import_ncs(rows, {}, header=list(rows[0]))
        again = app.intake.import_ncs(rows, {}, header=list(rows[0]))
    assert (report.imported, again.skipped_existing) == (12, 12)
    with reading(app):
        first, second = (v.id for v in app.queries.list_records("nc")[:2])
    with app.acting_as(ADMIN, PASSWORD):
        for ref in (first, second):
            app.nonconformities.assess_nc(ref, impact=3, likelihood=3, capa_required=True)
        ca = app.corrective_actions.open_ca(title="Defects", problem="Recurring", owner=OWNER,
                                            ncs=[first, second]).id
    with app.acting_as(OWNER, PASSWORD):
        app.corrective_actions.investigate_ca(ca, method="ishikawa", root_cause="Worn tool",
                                              category="machine")
        app.corrective_actions.plan_ca(ca, action="Replace tool", assignee=OWNER, due=_day(-2),
                                       action_type="corrective",
                                       past_due_reason="an overdue item to read")
    with app.acting_as(ADMIN, PASSWORD):
        app.corrective_actions.approve_ca(ca)
    before = _answers(app)
    assert [v["status"] for v in before[0][:2]] == ["linked", "linked"]
    assert before[2] == [first, second] and before[3][0]["days_overdue"] == 2
    with app.acting_as(ADMIN, PASSWORD):
        app.queries.rebuild_read_models()
    assert _answers(app) == before
    # The NCs were detected in March 2024: a period that holds them, whatever today is.
    figures = collect(app.read_models, _day(0), "2024-01-01")
    assert figures.recurrence == [("P-1", "machine", 2)]
    with reading(app):
        exported = list(app.intake.export_events())
    assert [e["position"] for e in exported] == sorted(e["position"] for e in exported)
    with reading(app):
        assert {r["id"] for r in app.intake.export_records()} >= {first, ca}
