"""The same lifecycle, history and refusals on a SQLite file and on a PostgreSQL database, through
the application and through the `capa` command in a real process."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from capa.app.application import CapaApplication
from capa.app.store import StoreUnavailable, open_store, storage_failure
from capa.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, RuleViolation
from capa.domain.record import record_uuid
from tests.support.backends import (
    ADMIN,
    BACKENDS,
    ENGINEER,
    OWNER,
    PASSWORD,
    REPORTER,
    cli_env,
    close_all,
    create_store,
    event_count,
    event_rows,
    new_target,
    run_cli,
)
from tests.support.reading import reading

TODAY = dt.datetime.now(dt.UTC).date()
YEAR = TODAY.year


def days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_target(request.param, tmp_path)


@pytest.fixture
def app(target: str) -> Iterator[CapaApplication]:
    created = create_store(target)
    yield created
    created.close()


def as_user(app: CapaApplication, user: str) -> Any:
    return app.acting_as(user, PASSWORD)


# -- the application -------------------------------------------------------------------------


def test_the_lifecycle_through_the_application(target: str, app: CapaApplication) -> None:
    with as_user(app, REPORTER):
        nc = app.nonconformities.raise_nc(title="Cracked housing",
                                          description="Hairline crack at boss B2",
                                          source="customer-complaint", severity="major",
                                          product="IP-200").id
        assert app.nonconformities.contain_nc(nc, action="Lot quarantined",
                                              disposition="quarantine").status \
            == "contained"
    with as_user(app, ENGINEER):
        assert app.nonconformities.assess_nc(nc, impact=4, likelihood=3,
                                             capa_required=True).status == "assessed"
        ca = app.corrective_actions.open_ca(title="Housing cracks", problem="Cracks at boss B2",
                                            owner=OWNER,
                                            ncs=[nc]).id
    assert (nc, ca) == (f"NC-{YEAR}-0001", f"CA-{YEAR}-0001")
    with as_user(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["Boss cracks"])
        app.corrective_actions.plan_ca(ca, action="Replace gate insert", assignee=OWNER,
                                       due=days(20),
                                       action_type="corrective")
    with as_user(app, ADMIN):
        assert app.corrective_actions.approve_ca(ca).status == "approved"
    with as_user(app, OWNER):
        assert app.corrective_actions.complete_action(
            ca, "A1", note="Insert replaced").status == "implemented"
    with as_user(app, ENGINEER):
        assert app.corrective_actions.verify_ca(ca, effective=True,
                                                note="No cracks in 3 lots").status == "verified"
    with as_user(app, ADMIN):
        closed = app.corrective_actions.close_ca(ca)
    assert (closed.status, closed.as_dict()["closed_ncs"]) == ("closed", [nc])

    # A second application, as a new process would open it, sees the same records.
    reopened = open_store(target)
    try:
        with reading(reopened):
            assert reopened.records.show(ca).status == "closed"
            assert reopened.records.show(nc).status == "closed"
            assert reopened.records.show(ca, version=1).status == "open"
            trail = reopened.records.history(ca)
        assert [e.version for e in trail] == list(range(1, len(trail) + 1))
        assert [e.event_type for e in trail][:2] == ["Opened", "RootCauseAnalysed"]
        # Positions are the events' places in the one global log, and tell the same order.
        rows = event_rows(target)
        by_record = [(p, v) for p, o, v, _, _ in rows if o == record_uuid(ca)]
        assert [(e.position, e.version) for e in trail] == by_record
        positions = [e.position for e in trail]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        # The CA's closure and its NC's closure are one save: adjacent in the global log.
        with reading(reopened):
            nc_close = reopened.records.history(nc)[-1]
        assert abs(nc_close.position - trail[-1].position) == 1
    finally:
        reopened.close()


def test_refusals_write_nothing(target: str, app: CapaApplication) -> None:
    with as_user(app, REPORTER):
        nc = app.nonconformities.raise_nc(title="Resin out of spec",
                                          description="Melt flow index high",
                                          source="supplier", severity="minor").id
    before = event_count(target)

    def refused(error: type[Exception], command: Any) -> None:
        with pytest.raises(error):
            command()
        assert event_count(target) == before

    with as_user(app, REPORTER):
        refused(NotPermitted, lambda: app.nonconformities.assess_nc(nc, impact=2, likelihood=2,
                                                                    capa_required=True))
        refused(NotFound, lambda: app.nonconformities.contain_nc(f"NC-{YEAR}-0999", action="x"))
        refused(InvalidInput, lambda: app.nonconformities.contain_nc("NC-1", action="x"))
    with as_user(app, ENGINEER):
        refused(RuleViolation, lambda: app.corrective_actions.open_ca(title="t", problem="p",
                                                                      owner=OWNER,
                                                                      ncs=[nc]))


def test_a_stale_writer_conflicts_and_writes_nothing(target: str, app: CapaApplication) -> None:
    with as_user(app, REPORTER):
        nc = app.nonconformities.raise_nc(title="Burr on edge", description="Deburring skipped",
                                          source="process", severity="minor").id
    other = open_store(target)
    try:
        stale = other.load(_nc_class(), nc)
        with as_user(app, REPORTER):
            app.nonconformities.contain_nc(nc, action="Reworked")
        before = event_count(target)
        with as_user(other, REPORTER):
            stale.contain("Sorted", "none")
            with pytest.raises(Conflict):
                other.persist(stale)
        assert event_count(target) == before
    finally:
        other.close()


def _nc_class() -> Any:
    from capa.domain.nonconformity import Nonconformity

    return Nonconformity


def test_only_init_creates_a_store(tmp_path: Path, target: str) -> None:
    with pytest.raises(NotFound, match="capa init|init"):
        open_store(target)
    created = create_store(target)
    created.close()
    with pytest.raises(InvalidInput, match="already exists"):
        open_store(target, create=True)
    close_all([open_store(target)])


def test_unreachable_servers_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="port 1"):
        open_store("postgresql://capa:secret@127.0.0.1:1/capa")
    with pytest.raises(InvalidInput, match="scheme"):
        open_store("mysql://capa@localhost/capa")


# -- the command line ----------------------------------------------------------------------


def cli(target: str, user: str, *args: str, expect: int = 0) -> Any:
    done = run_cli(target, user, args)
    assert "Traceback" not in done.stderr
    assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout) if expect == 0 else json.loads(done.stderr)


def test_the_lifecycle_through_the_command_line(target: str, tmp_path: Path) -> None:
    create_store(target).close()
    nc = cli(target, REPORTER, "nc", "raise", "--title", "Cracked housing", "--description",
             "Hairline crack", "--source", "customer-complaint", "--severity", "major")["id"]
    cli(target, REPORTER, "nc", "contain", nc, "--action", "Lot quarantined")
    cli(target, ENGINEER, "nc", "assess", nc, "--impact", "4", "--likelihood", "3",
        "--capa-required")
    ca = cli(target, ENGINEER, "ca", "open", "--title", "Housing cracks", "--problem",
             "Cracks at boss B2", "--owner", OWNER, "--nc", nc)["id"]
    cli(target, OWNER, "ca", "investigate", ca, "--method", "5-whys", "--root-cause",
        "Worn gate insert", "--category", "machine", "--why", "Boss cracks")
    cli(target, OWNER, "ca", "plan", ca, "--action", "Replace gate insert", "--assignee", OWNER,
        "--due", days(20), "--type", "corrective")
    cli(target, ADMIN, "ca", "approve", ca)
    cli(target, OWNER, "ca", "complete", ca, "A1", "--note", "Insert replaced")
    cli(target, ENGINEER, "ca", "verify", ca, "--effective", "--note", "No cracks")
    assert cli(target, ADMIN, "ca", "close", ca)["status"] == "closed"
    assert cli(target, ADMIN, "nc", "show", nc)["status"] == "closed"
    assert cli(target, ADMIN, "ca", "show", ca, "--version", "1")["status"] == "open"
    trail = cli(target, ADMIN, "history", ca)
    assert [e["version"] for e in trail] == list(range(1, len(trail) + 1))
    by_record = [p for p, o, _, _, _ in event_rows(target) if o == record_uuid(ca)]
    assert [e["position"] for e in trail] == by_record
    assert [r["id"] for r in cli(target, ADMIN, "nc", "list")] == [nc]

    before = event_count(target)
    # Refusals, each with its exit status, and nothing written.
    assert cli(target, ADMIN, "ca", "reopen", ca, "--reason", "", expect=1)["error"]["code"] == 1
    cli(target, REPORTER, "nc", "assess", nc, "--impact", "9", "--likelihood", "3",
        "--capa-required", expect=2)
    cli(target, ADMIN, "nc", "show", f"NC-{YEAR}-0999", expect=3)
    cli(target, REPORTER, "ca", "approve", ca, expect=4)
    assert event_count(target) == before


def test_the_command_line_on_a_missing_or_unreachable_store(target: str) -> None:
    error = cli(target, ADMIN, "nc", "list", expect=3)["error"]
    assert "capa" in error["message"] and "init" in error["message"]
    error = cli("postgresql://capa:secret@127.0.0.1:1/capa", ADMIN, "nc", "list",
                expect=3)["error"]
    assert "secret" not in error["message"]
    assert "Connection refused" in error["message"] or "port 1" in error["message"]


def test_init_creates_the_store_and_never_prints_a_password(target: str, tmp_path: Path) -> None:
    # A server store's key has a configured place (SPEC §9.4), not the current folder.
    env = cli_env(ADMIN, CAPA_KEY=str(tmp_path / "capa.key"))
    done = subprocess.run(
        [sys.executable, "-m", "capa", "--db", target, "init", "--admin", ADMIN,
         "--full-name", "Maria Hernandez"],
        env=env, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "store created at" in done.stdout
    if target.startswith("postgres"):
        secret = target.split("@")[0].rsplit(":", 1)[1]
        assert secret not in done.stdout + done.stderr
        with psycopg.connect(target) as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert "capa_events" in tables
        assert "capa_snapshots" not in tables  # no snapshots: records fold from their events
    assert event_count(target) >= 2
    again = subprocess.run(
        [sys.executable, "-m", "capa", "--db", target, "--json", "init", "--admin", ADMIN],
        env=env, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert again.returncode in (2, 3) and "Traceback" not in again.stderr


def test_store_failures_during_a_command_become_clean_errors() -> None:
    busy = storage_failure(OperationalError("canceling statement due to lock timeout"))
    assert isinstance(busy, Conflict) and "retry is safe" in str(busy)
    assert isinstance(storage_failure(OperationalError("database is locked")), Conflict)
    assert isinstance(storage_failure(OperationalError("deadlock detected\nDETAIL: ...")),
                      Conflict)
    assert isinstance(storage_failure(IntegrityError("duplicate key")), Conflict)
    lost = storage_failure(OperationalError("server closed the connection unexpectedly\n..."))
    assert isinstance(lost, StoreUnavailable) and "\n" not in str(lost)
    assert storage_failure(ValueError("not a store failure")) is None
