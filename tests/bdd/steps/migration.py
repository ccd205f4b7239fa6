"""Steps of features/reports/migrating_history.feature: a legacy register migrated with its
history (SPEC §10)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from capa.app.application import CapaApplication
from capa.app.import_rows import ImportRejected, ImportReport, read_csv
from capa.app.migration import LegacySource
from capa.reports.dashboard import collect
from tests.support.cast import QUALITY_MANAGER
from tests.support.stores import Store

REGISTER = """\
CAPA No,title,description,source,severity,detected_on,Status,Closed On,Root Cause,\
Corrective Action,CA Closed On
Q-1,Cracked housing,Boss cracked,customer-complaint,major,2024-01-10,Closed,2024-03-02,\
Mould too cold,Raised mould temperature,2024-02-28
Q-2,Wrong lot,Entered twice,process,minor,2024-02-01,Cancelled,2024-02-02,,,
Q-3,Seal weak,Peel below 8 N,process,minor,2024-05-01,Open,,,,
"""


@dataclass
class Migration:
    store: Store
    app: CapaApplication
    folder: Path
    text: str = REGISTER
    reports: list[ImportReport] | None = None
    refusal: ImportRejected | None = None
    before: int = 0


@pytest.fixture
def migration(tmp_path: Path, store_target: str) -> Iterator[Migration]:
    store = Store(store_target)
    yield Migration(store, store.create(), tmp_path, reports=[])
    store.close()


@given("a legacy register with a closed CAPA, a cancelled one and an open one")
def legacy_register(migration: Migration) -> None:
    migration.before = migration.store.event_count()


def _migrate(migration: Migration, system: str) -> None:
    path = migration.folder / "register.csv"
    path.write_text(migration.text, encoding="utf-8")
    header, rows = read_csv(path)
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        try:
            report = migration.app.intake.import_ncs(rows, {"CAPA No": "external_ref"},
                                                     header=header,
                                                     source=LegacySource.of_file(path, system))
        except ImportRejected as refused:
            migration.refusal = refused
            return
    assert migration.reports is not None
    migration.reports.append(report)


@when(parsers.parse('the quality manager migrates the register from "{system}"'))
def migrate(migration: Migration, system: str) -> None:
    _migrate(migration, system)


@when("the quality manager migrates a register whose closed CAPA closed before it was found")
def migrate_bad(migration: Migration) -> None:
    migration.text = REGISTER.replace("2024-03-02", "2024-01-09")
    _migrate(migration, "QMS 2019")


def _nc(migration: Migration, ref: str) -> dict[str, object]:
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        return next(v.model_dump() for v in migration.app.queries.list_records("nc")
                    if v.external_ref == ref)


@then("the closed CAPA is closed on its legacy closing date, with its corrective action closed")
def closed_on_legacy_date(migration: Migration) -> None:
    nc = _nc(migration, "Q-1")
    assert nc["status"] == "closed"
    assert nc["migration"]["closed_on"] == "2024-03-02"  # type: ignore[index]
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        [ca] = migration.app.queries.list_records("ca")
    assert ca.status == "closed" and ca.linked_ncs == [nc["id"]]
    assert _nc(migration, "Q-2")["status"] == "cancelled"
    assert _nc(migration, "Q-3")["status"] == "open"


@then(parsers.parse('its history says it was migrated from "{system}" by the quality manager'))
def history_says(migration: Migration, system: str) -> None:
    nc = _nc(migration, "Q-1")
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        last = migration.app.records.history(str(nc["id"]))[-1]
    assert last.reason is not None
    assert last.reason.startswith(f"Migrated from {system} (register.csv, row 2) by "
                                  f"{QUALITY_MANAGER}: legacy status closed on 2024-03-02")
    assert last.actor == QUALITY_MANAGER


@then("the mean time to close on the dashboard is counted from the legacy dates")
def kpis(migration: Migration) -> None:
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        figures = collect(migration.app.read_models, dt.date.today().isoformat(),
                          start="2024-01-01")  # the legacy years, not the default last 12 months
    assert figures.mean_days_to_close_nc == 52.0  # 2024-01-10 to 2024-03-02
    assert figures.mean_days_to_close_ca == 49.0  # 2024-01-10 to 2024-02-28


@then("the store holds 3 migrated records and the second run reports 3 already migrated")
def held_once(migration: Migration) -> None:
    assert migration.reports is not None
    assert [r.migrated for r in migration.reports] == [3, 0]
    assert migration.reports[1].already_migrated == 3
    with migration.store.acting(migration.app, QUALITY_MANAGER):
        assert len(migration.app.queries.list_records("nc")) == 3


@then(parsers.parse("the migration is refused, naming row {row:d} and its closing date"))
def refused(migration: Migration, row: int) -> None:
    assert migration.refusal is not None
    assert [(e.row, e.column) for e in migration.refusal.report.errors] == [(row, "Closed On")]


@then("nothing from the register is recorded")
def nothing(migration: Migration) -> None:
    assert migration.store.event_count() == migration.before
