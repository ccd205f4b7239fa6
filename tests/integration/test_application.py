"""The application service on a real store, SQLite and PostgreSQL: lifecycle, ids, history, time
travel, snapshots, evidence and concurrency, each checked again after the store is closed and
reopened."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from capa.adapters.target import parse_target
from capa.app.application import CapaApplication
from capa.app.evidence import MAX_EVIDENCE_BYTES
from capa.app.store import store_env
from capa.domain.errors import Conflict, InvalidInput, NotFound, NotPermitted, RuleViolation
from capa.domain.record import record_uuid
from tests.support.cast import (
    OWNER,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    TECHNICIAN,
    VERIFIER,
)
from tests.support.cast import PLANT_CREW as CAST
from tests.support.reading import reading
from tests.support.stores import Store

YEAR = dt.datetime.now(dt.UTC).year
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def app(store: Store) -> CapaApplication:
    return store.create(CAST)


def days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


def raise_nc(store: Store, app: CapaApplication, title: str = "Cracked housing",
             **extra: Any) -> str:
    with store.acting(app, REPORTER):
        return app.nonconformities.raise_nc(title=title, description="Hairline crack at boss B2",
                                            source="customer-complaint", severity="major",
                                            **extra).id


def nc_needing_ca(store: Store, app: CapaApplication, title: str = "Cracked housing") -> str:
    ref = raise_nc(store, app, title)
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.assess_nc(ref, impact=4, likelihood=3, capa_required=True)
    return ref


def open_ca(store: Store, app: CapaApplication, ncs: list[str]) -> str:
    with store.acting(app, QUALITY_ENGINEER):
        return app.corrective_actions.open_ca(title="Housing cracks", problem="Cracks at boss B2",
                                              owner=OWNER,
                                              ncs=ncs).id


def plan_and_approve(store: Store, app: CapaApplication, ca: str) -> None:
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="5-whys", root_cause="Worn gate insert",
                                              category="machine", whys=["Boss cracks",
                                                                        "Wall too thin"])
        app.corrective_actions.plan_ca(ca, action="Sort lot L2311", assignee=TECHNICIAN,
                                       due=days(10),
                                       action_type="correction")
        app.corrective_actions.plan_ca(ca, action="Replace gate insert", assignee=OWNER,
                                       due=days(20),
                                       action_type="corrective")
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.approve_ca(ca)


def implement(store: Store, app: CapaApplication, ca: str) -> None:
    with store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="312 sorted, 27 scrapped")
    with store.acting(app, OWNER):
        app.corrective_actions.complete_action(ca, "A2", note="Insert replaced")


def verified_ca(store: Store, app: CapaApplication, ncs: list[str]) -> str:
    ca = open_ca(store, app, ncs)
    plan_and_approve(store, app, ca)
    implement(store, app, ca)
    with store.acting(app, VERIFIER):
        app.corrective_actions.verify_ca(ca, effective=True, note="No cracks in 3 lots")
    return ca


def dump(value: Any) -> Any:
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value.model_dump(mode="json")


def events_of(store: Store, ref: str) -> int:
    return store.rows("SELECT COUNT(*) FROM stored_events WHERE originator_id = ?",
                      record_uuid(ref).hex)[0][0]


# -- lifecycle -------------------------------------------------------------------------------


def test_full_lifecycle(store: Store, app: CapaApplication) -> None:
    first = raise_nc(store, app, "Cracked housing", product="IP-200", lot="L2311")
    second = raise_nc(store, app, "Resin out of spec")
    with store.acting(app, REPORTER):
        assert app.nonconformities.contain_nc(first, action="Lot quarantined",
                                              disposition="quarantine").status == "contained"
    with store.acting(app, QUALITY_ENGINEER):
        assert app.nonconformities.assess_nc(first, impact=4, likelihood=3,
                                             capa_required=True).status \
            == "assessed"
        app.nonconformities.assess_nc(second, impact=3, likelihood=3, capa_required=True)
        opened = app.corrective_actions.open_ca(title="Housing cracks", problem="Cracks at boss B2",
                                                owner=OWNER,
                                                ncs=[first, second.lower()])
    assert opened.as_dict() == {"id": f"CA-{YEAR}-0001", "status": "open", "version": 1,
                                "linked_ncs": [first, second]}
    ca = opened.id
    for nc in (first, second):
        with reading(app):
            view = app.records.show(nc)
        assert (view.status, view.linked_cas) == ("linked", [ca])

    plan_and_approve(store, app, ca)
    with reading(app):
        assert app.records.show(ca).status == "approved"
    with store.acting(app, TECHNICIAN):
        partial = app.corrective_actions.complete_action(ca, "a1", note="312 sorted")
    assert (partial.status, partial.as_dict()["action"]) == ("approved", "A1")
    with store.acting(app, OWNER):
        assert app.corrective_actions.complete_action(
            ca, "A2", note="Insert replaced").status == "implemented"
    with store.acting(app, VERIFIER):
        verified = app.corrective_actions.verify_ca(ca, effective=True, note="No cracks in 3 lots")
    assert (verified.status, verified.as_dict()["iteration"]) == ("verified", 1)
    with store.acting(app, QUALITY_MANAGER):
        closed = app.corrective_actions.close_ca(ca)
    assert closed.as_dict()["closed_ncs"] == [first, second]
    assert closed.status == "closed"

    reopened = store.app()
    with reading(reopened):
        view = reopened.records.show(ca)
    assert view.status == "closed"
    assert [i.state for i in view.items] == ["done", "done"]
    assert view.items[0].completed_by == TECHNICIAN
    assert view.closure is not None
    assert view.closure.signature.user_id == QUALITY_MANAGER
    assert view.closure.signature.meaning == "approval"
    for nc in (first, second):
        with reading(reopened):
            nc_view = reopened.records.show(nc)
        assert nc_view.status == "closed"
        assert nc_view.closure is not None and nc_view.closure.with_ca == ca


def test_signatures_are_bound_to_the_content_the_signer_saw(store: Store,
                                                             app: CapaApplication) -> None:
    """R9: each signature's SHA-256 is the digest of the record at the version signed."""
    ca = verified_ca(store, app, [nc_needing_ca(store, app)])
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.close_ca(ca)
    with reading(store.app()):
        view = store.app().records.show(ca)
    assert view.closure is not None
    signatures = [view.approvals[0].signature, view.verifications[0].signature,
                  view.closure.signature]
    assert [s.meaning for s in signatures] == ["approval", "verification", "approval"]
    for signature in signatures:
        signed = app.repository.get(record_uuid(ca), version=signature.signed_version)
        assert signed.content_digest() == signature.content_sha256
        assert signature.signed_at.endswith("Z")
    assert signatures[0].content_sha256 != signatures[1].content_sha256


def test_nc_needing_no_ca_is_closed_with_a_signature(store: Store, app: CapaApplication) -> None:
    nc = raise_nc(store, app)
    with store.acting(app, QUALITY_ENGINEER):
        with pytest.raises(RuleViolation) as refused:
            app.nonconformities.assess_nc(nc, impact=1, likelihood=2, capa_required=False)
        assert refused.value.rule == "R1"
        app.nonconformities.assess_nc(nc, impact=1, likelihood=2, capa_required=False,
                                      rationale="Isolated, caught before release")
        assert app.nonconformities.close_nc(nc).status == "closed"
    with reading(store.app()):
        view = store.app().records.show(nc)
    assert view.closure is not None and view.closure.signature is not None
    assert view.closure.signature.user_id == QUALITY_ENGINEER
    assert view.closure.signature.meaning == "approval"
    assert view.assessment is not None and view.assessment.risk_level == "low"


def test_not_effective_starts_a_second_iteration(store: Store, app: CapaApplication) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    implement(store, app, ca)
    with store.acting(app, VERIFIER):
        result = app.corrective_actions.verify_ca(ca, effective=False,
                                                  note="Two cracked bosses in lot L2402")
    assert (result.status, result.as_dict()["iteration"]) == ("investigated", 2)
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="ishikawa", root_cause="Resin moisture",
                                              category="material")
        assert app.corrective_actions.plan_ca(ca, action="Moisture check", assignee=TECHNICIAN,
                                              due=days(5),
                                              action_type="corrective").as_dict()["action"] == "A3"
    with reading(store.app()):
        view = store.app().records.show(ca)
    assert (view.status, view.iteration) == ("planned", 2)
    assert [a.iteration for a in view.analyses] == [1, 2]
    assert view.root_cause is not None and view.root_cause.root_cause == "Resin moisture"
    assert [(v.iteration, v.effective) for v in view.verifications] == [(1, False)]


def test_planning_after_approval_voids_it(store: Store, app: CapaApplication) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    with store.acting(app, OWNER):
        assert app.corrective_actions.plan_ca(ca, action="Retrain operators", assignee=TECHNICIAN,
                                              due=days(30),
                                              action_type="preventive").status == "planned"
    with reading(store.app()):
        view = store.app().records.show(ca)
    assert [a.voided for a in view.approvals] == [True]


def test_refusals_write_nothing_and_name_their_rule(store: Store, app: CapaApplication) -> None:
    nc = nc_needing_ca(store, app)
    with store.acting(app, QUALITY_ENGINEER):
        # The owner holds the quality role too, so only the rules stand in the way.
        ca = app.corrective_actions.open_ca(title="Complaint files",
                                            problem="No documented decision",
                                            owner=QUALITY_ENGINEER, ncs=[nc]).id
        app.corrective_actions.investigate_ca(ca, method="other", root_cause="SOP gap",
                                              category="method")
        app.corrective_actions.plan_ca(ca, action="Revise SOP-12", assignee=QUALITY_ENGINEER,
                                       due=days(10),
                                       action_type="corrective")
    before = store.event_count()

    def refused(rule: str, command: Any) -> None:
        with pytest.raises(RuleViolation) as refusal:
            command()
        assert refusal.value.rule == rule
        assert f"({rule})" in str(refusal.value)
        assert store.event_count() == before

    with store.acting(app, QUALITY_ENGINEER):
        refused("R2", lambda: app.corrective_actions.approve_ca(ca))
        refused("R7", lambda: app.corrective_actions.complete_action(ca, "A1", note="done early"))
        refused("R4", lambda: app.corrective_actions.close_ca(ca))
        refused("R7", lambda: app.corrective_actions.link_nc(nc, ca))
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.approve_ca(ca)
        before = store.event_count()
        refused("R5", lambda: app.corrective_actions.extend_action(ca, "A1", due=days(10),
                                                                   reason="needs time"))
        refused("R5", lambda: app.corrective_actions.extend_action(ca, "A1", due=days(9),
                                                                   reason="needs time"))
        refused("R5", lambda: app.corrective_actions.extend_action(ca, "A1", due=days(11),
                                                                   reason=" "))
        refused("R6", lambda: app.corrective_actions.cancel_ca(ca, reason=""))
    with store.acting(app, QUALITY_ENGINEER):
        app.corrective_actions.complete_action(ca, "A1", note="SOP-12 rev D released")
        before = store.event_count()
        refused("R3", lambda: app.corrective_actions.verify_ca(ca, effective=True, note="fine"))
        refused("R4", lambda: app.corrective_actions.close_ca(ca))
    with store.acting(app, VERIFIER):
        app.corrective_actions.verify_ca(ca, effective=True, note="Ten files checked")
    with store.acting(app, QUALITY_ENGINEER):
        before = store.event_count()
        refused("R2", lambda: app.corrective_actions.close_ca(ca))
    with reading(store.app()):
        assert store.app().records.show(ca).status == "verified"


def test_only_the_assignee_or_owner_completes_an_item(store: Store,
                                                      app: CapaApplication) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    before = store.event_count()
    with store.acting(app, TECHNICIAN), pytest.raises(NotPermitted):
        app.corrective_actions.complete_action(ca, "A2", note="done")  # A2 is assigned to the owner
    assert store.event_count() == before
    with store.acting(app, OWNER):
        app.corrective_actions.complete_action(ca, "A1", note="done on behalf of the technician")
    with reading(app):
        assert app.records.show(ca).items[0].completed_by == OWNER


def test_owners_and_assignees_hold_a_role_that_can_do_the_work(store: Store,
                                                              app: CapaApplication) -> None:
    nc = nc_needing_ca(store, app)
    before = store.event_count()
    with store.acting(app, QUALITY_ENGINEER), pytest.raises(InvalidInput, match="owner or quality"):
        app.corrective_actions.open_ca(title="Housing cracks", problem="Cracks at boss B2",
                                       owner=REPORTER,
                                       ncs=[nc])
    assert store.event_count() == before
    ca = open_ca(store, app, [nc])
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="ishikawa", root_cause="Worn gate insert",
                                              category="machine")
    # An assignee is any active user who may write (SPEC §10), a reporter too; an auditor
    # writes nothing and cannot be one.
    with store.acting(app, QUALITY_MANAGER):
        app.identity.add_user("aud1", full_name="Audrey Auditor", roles=["auditor"],
                              password="correct-horse-battery-staple")
    before = store.event_count()
    with store.acting(app, OWNER), pytest.raises(InvalidInput, match="could not complete"):
        app.corrective_actions.plan_ca(ca, action="Sort lot L2311", assignee="aud1", due=days(10),
                                       action_type="correction")
    assert store.event_count() == before
    with store.acting(app, OWNER):
        app.corrective_actions.plan_ca(ca, action="Sort lot L2311", assignee=REPORTER, due=days(10),
                                       action_type="correction")


# -- CA closure closes its NCs in the same save (R4) -----------------------------------------


def test_ca_closure_and_its_ncs_are_one_contiguous_save(store: Store,
                                                        app: CapaApplication) -> None:
    ncs = [nc_needing_ca(store, app, f"NC {i}") for i in range(3)]
    other = nc_needing_ca(store, app, "Not linked to this CA")
    ca = verified_ca(store, app, ncs[:2])
    with store.acting(app, QUALITY_ENGINEER):
        app.corrective_actions.link_nc(ncs[2], ca)
    before = store.event_count()
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.close_ca(ca)
    assert store.event_count() == before + 4

    reopened = store.app()
    with reading(reopened):
        last = [reopened.records.history(ref)[-1] for ref in (ca, *ncs)]
    assert [e.event_type for e in last] == ["Closed"] + ["ClosedWithCorrectiveAction"] * 3
    positions = sorted(e.position for e in last)
    assert positions == list(range(positions[0], positions[0] + 4))
    top = store.rows("SELECT MAX(rowid) FROM stored_events")[0][0]
    assert positions[-1] == top
    with reading(reopened):
        assert reopened.records.show(other).status == "assessed"


def test_ca_closure_is_atomic_when_a_linked_nc_changes_meanwhile(
        store: Store, app: CapaApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = nc_needing_ca(store, app)
    ca = verified_ca(store, app, [nc])
    other = store.app()
    interfere_once(monkeypatch, app, nc, lambda: _amend(store, other, nc))
    before = store.event_count()
    with store.acting(app, QUALITY_MANAGER), pytest.raises(Conflict):
        app.corrective_actions.close_ca(ca)
    assert store.event_count() == before + 1  # only the other writer's amendment
    fresh = store.app()
    with reading(fresh):
        assert fresh.records.show(ca).status == "verified"
        assert fresh.records.show(nc).status == "linked"
        assert fresh.records.history(nc)[-1].event_type == "Amended"


def _amend(store: Store, app: CapaApplication, ref: str) -> None:
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.amend_nc(ref, field="lot", value="L2399", reason="Wrong lot recorded")


def interfere_once(monkeypatch: pytest.MonkeyPatch, app: CapaApplication, ref: str,
                   write: Any, after: int = 1) -> list[int]:
    """Let another writer change `ref` right after `app` has loaded it `after` times."""
    repository = app.repository
    original = repository.get
    target = record_uuid(ref)
    loads: list[int] = []

    def get(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        loaded = original(aggregate_id, *args, **kwargs)
        if aggregate_id == target:
            loads.append(1)
            if len(loads) == after:
                write()
        return loaded

    monkeypatch.setattr(repository, "get", get)
    return loads


def test_opening_a_ca_for_an_nc_that_changes_meanwhile_is_a_conflict(
        store: Store, app: CapaApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = nc_needing_ca(store, app)
    other = store.app()
    # Loaded once to check it, once more to link it: the other writer slips in between the
    # second load and the save.
    loads = interfere_once(monkeypatch, app, nc, lambda: _amend(store, other, nc), after=2)
    before = store.event_count()
    with pytest.raises(Conflict):
        open_ca(store, app, [nc])
    assert len(loads) >= 2
    assert store.event_count() == before + 1  # only the other writer's amendment
    fresh = store.app()
    with reading(fresh):
        assert fresh.records.show(nc).status == "assessed"
        assert fresh.queries.list_records("ca") == []
    monkeypatch.undo()
    assert open_ca(store, fresh, [nc]) == f"CA-{YEAR}-0001"


# -- concurrency -----------------------------------------------------------------------------


def test_a_concurrent_modification_is_a_conflict_and_the_loser_writes_nothing(
        store: Store, app: CapaApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = raise_nc(store, app)
    winner, loser = store.app(), store.app()
    interfere_once(monkeypatch, loser, nc, lambda: _contain(store, winner, nc, "Winner"))
    before = store.event_count()
    with store.acting(loser, REPORTER), pytest.raises(Conflict) as refused:
        loser.nonconformities.contain_nc(nc, action="Loser", disposition="scrap")
    assert "retry" in str(refused.value)
    assert store.event_count() == before + 1
    with reading(store.app()):
        view = store.app().records.show(nc)
    assert view.version == 2
    assert [c.action for c in view.containment] == ["Winner"]
    # A retry on fresh state succeeds.
    with store.acting(loser, REPORTER):
        assert loser.nonconformities.contain_nc(nc, action="Loser",
                                                disposition="scrap").version == 3


def _contain(store: Store, app: CapaApplication, ref: str, action: str) -> None:
    with store.acting(app, REPORTER):
        app.nonconformities.contain_nc(ref, action=action, disposition="quarantine")


def test_two_instances_saving_the_same_version_conflict(store: Store,
                                                        app: CapaApplication) -> None:
    nc = raise_nc(store, app)
    first, second = store.app(), store.app()
    with store.acting(first, REPORTER), store.acting(second, REPORTER):
        one = first.repository.get(record_uuid(nc))
        two = second.repository.get(record_uuid(nc))
        one.contain("First", "quarantine")
        two.contain("Second", "scrap")
        first.persist(one)
        before = store.event_count()
        with pytest.raises(Conflict):
            second.persist(two)
    assert store.event_count() == before
    with reading(store.app()):
        assert [c.action for c in store.app().records.show(nc).containment] == ["First"]


WRITER = textwrap.dedent("""
    import json, sys, time
    from capa.app.store import open_store
    from capa.domain.errors import CapaError

    path, user, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    app = open_store(path)
    while time.time() < start:
        time.sleep(0.001)
    ids, failures = [], []
    with app.acting_as(user):
        for i in range(count):
            try:
                ids.append(app.nonconformities.raise_nc(title=f"Concurrent {i}", description="race",
                                                        source="process", severity="minor").id)
            except CapaError as exc:
                failures.append(type(exc).__name__)
    print(json.dumps({"ids": ids, "failures": failures}))
""")


def test_ids_are_unique_and_contiguous_under_concurrent_processes(
        store: Store, app: CapaApplication) -> None:
    processes, per_process = 6, 5
    before = store.event_count()
    start = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    running = [
        subprocess.Popen([sys.executable, "-c", WRITER, store.target, REPORTER,
                          str(per_process), str(start)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(processes)
    ]
    ids: list[str] = []
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in err
        result = json.loads(out)
        assert set(result["failures"]) <= {"Conflict"}
        ids.extend(result["ids"])
    assert len(ids) == len(set(ids))
    assert len(ids) >= processes  # every process got at least some through
    numbers = sorted(int(ref.rsplit("-", 1)[1]) for ref in ids)
    assert numbers == list(range(1, len(ids) + 1))
    assert all(ref.startswith(f"NC-{YEAR}-") for ref in ids)
    assert store.event_count() == before + len(ids)
    with reading(store.app()):
        listed = {view.id for view in store.app().queries.list_records("nc")}
    assert listed == set(ids)


# -- human ids -------------------------------------------------------------------------------


def test_ids_are_sequential_per_year_and_never_reused(store: Store, app: CapaApplication) -> None:
    refs = [raise_nc(store, app, f"NC {i}") for i in range(3)]
    assert refs == [f"NC-{YEAR}-{n:04d}" for n in (1, 2, 3)]
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.cancel_nc(refs[1], reason="Raised in error")
        app.nonconformities.assess_nc(refs[0], impact=3, likelihood=3, capa_required=True)
    assert open_ca(store, app, [refs[0]]) == f"CA-{YEAR}-0001"
    reopened = store.app()
    assert raise_nc(store, reopened) == f"NC-{YEAR}-0004"
    assert open_ca(store, reopened, []) == f"CA-{YEAR}-0002"
    with reading(reopened):
        assert reopened.records.show(refs[1]).status == "cancelled"


def test_a_refused_raise_consumes_no_number(store: Store, app: CapaApplication) -> None:
    raise_nc(store, app)
    before = store.event_count()
    with store.acting(app, REPORTER):
        for bad in ({"severity": "huge"}, {"title": " "}, {"detected_on": days(1)},
                    {"detected_on": "2026-02-30"}):
            fields = {"title": "t", "description": "d", "source": "process",
                      "severity": "minor", **bad}
            with pytest.raises(InvalidInput):
                app.nonconformities.raise_nc(**fields)
    assert store.event_count() == before
    assert raise_nc(store, app) == f"NC-{YEAR}-0002"


# -- reopening the store ---------------------------------------------------------------------


def test_a_reopened_store_shows_the_same_records_and_history(store: Store,
                                                             app: CapaApplication) -> None:
    nc = nc_needing_ca(store, app)
    ca = verified_ca(store, app, [nc])
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.close_ca(ca)
    with reading(app):
        shown = {ref: dump(app.records.show(ref)) for ref in (nc, ca)}
        trails = {ref: dump(app.records.history(ref)) for ref in (nc, ca)}
    store.close()

    again = store.app()
    for ref in (nc, ca):
        with reading(again):
            assert dump(again.records.show(ref)) == shown[ref]
            assert dump(again.records.history(ref)) == trails[ref]
    with reading(again):
        assert [v.id for v in again.queries.list_records("ca", statuses=["closed"])] == [ca]


# -- history and time travel -----------------------------------------------------------------


def test_history_is_the_audit_trail(store: Store, app: CapaApplication) -> None:
    nc = raise_nc(store, app, "Cracked housng")
    with store.acting(app, QUALITY_ENGINEER):
        app.nonconformities.amend_nc(nc, field="title", value="Cracked housing",
                                     reason="Typo in title")
        app.nonconformities.contain_nc(nc, action="Lot quarantined", disposition="quarantine")
        app.nonconformities.cancel_nc(nc, reason="Duplicate of an earlier NC")
        app.nonconformities.reopen_nc(nc, reason="Not a duplicate after all")
    with reading(store.app()):
        trail = store.app().records.history(nc)
    assert [e.event_type for e in trail] == ["Raised", "Amended", "Contained", "Cancelled",
                                            "Reopened"]
    assert [e.version for e in trail] == [1, 2, 3, 4, 5]
    positions = [e.position for e in trail]
    assert positions == sorted(positions) and len(set(positions)) == 5 and positions[0] > 0
    assert [e.actor for e in trail] == [REPORTER] + [QUALITY_ENGINEER] * 4
    for entry in trail:
        assert entry.time.endswith("Z")
        moment = dt.datetime.fromisoformat(entry.time.replace("Z", "+00:00"))
        assert abs(dt.datetime.now(dt.UTC) - moment) < dt.timedelta(minutes=5)
    assert [e.reason for e in trail] == [None, "Typo in title", None,
                                        "Duplicate of an earlier NC", "Not a duplicate after all"]
    amended = {c.field: (c.old, c.new) for c in trail[1].changes}
    assert amended["title"] == ("Cracked housng", "Cracked housing")  # R6: old value visible
    raised = {c.field: c.new for c in trail[0].changes}
    assert raised["title"] == "Cracked housng" and raised["status"] == "open"
    contained = {c.field: c.new for c in trail[2].changes}
    assert contained["status"] == "contained"
    assert contained["containment"][0]["action"] == "Lot quarantined"
    assert all(e.signature is None for e in trail)


def test_history_shows_signatures_with_printed_names(store: Store, app: CapaApplication) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    with reading(store.app()):
        trail = store.app().records.history(ca)
    approval = trail[-1]
    assert approval.event_type == "PlanApproved"
    assert approval.actor == QUALITY_MANAGER
    assert approval.signature is not None
    assert approval.signature.user_id == QUALITY_MANAGER
    assert approval.signature.full_name == app.full_name(QUALITY_MANAGER)
    assert approval.signature.meaning == "approval"
    assert approval.signature.signed_at == approval.time


def test_show_version_rebuilds_each_old_state(store: Store, app: CapaApplication) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    implement(store, app, ca)
    reopened = store.app()
    expected = ["open", "investigated", "planned", "planned", "approved", "approved",
                "implemented"]
    for version, status in enumerate(expected, start=1):
        with reading(reopened):
            view = reopened.records.show(ca, version=version)
        assert (view.version, view.status) == (version, status)
    with reading(reopened):
        assert len(reopened.records.show(ca, version=3).items) == 1
        assert reopened.records.show(ca, version=5).approvals[0].voided is False
        assert reopened.records.show(ca).version == len(expected)
    with pytest.raises(NotFound), reading(reopened):
        reopened.records.show(ca, version=len(expected) + 1)
    with pytest.raises(InvalidInput), reading(reopened):
        reopened.records.show(ca, version=0)


def test_show_as_of_a_time_or_a_date(store: Store, app: CapaApplication) -> None:
    nc = raise_nc(store, app)
    for action in ("First", "Second", "Third"):
        _contain(store, app, nc, action)
    reopened = store.app()
    with reading(reopened):
        trail = reopened.records.history(nc)
    for entry in trail:
        with reading(reopened):
            assert reopened.records.show(nc, as_of=entry.time).version == entry.version
    second = dt.datetime.fromisoformat(trail[1].time.replace("Z", "+00:00"))
    just_before = (second - dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    with reading(reopened):
        assert reopened.records.show(nc, as_of=just_before).version == 1
    in_paris = second.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    with reading(reopened):
        assert reopened.records.show(nc, as_of=in_paris).version == 2
    naive = second.replace(tzinfo=None).isoformat()
    with reading(reopened):
        assert reopened.records.show(nc, as_of=naive).version == 2  # no offset means UTC
        assert [c.action for c in reopened.records.show(nc, as_of=trail[2].time).containment] == [
            "First", "Second"]
        assert reopened.records.show(nc, as_of=TODAY.isoformat()).version == 4  # end of that day
    with pytest.raises(NotFound, match="did not exist"), reading(reopened):
        reopened.records.show(nc, as_of=days(-1))
    for bad in ("yesterday", "2026-02-30", "2026-01-01T25:00"):
        with pytest.raises(InvalidInput), reading(reopened):
            reopened.records.show(nc, as_of=bad)
    with pytest.raises(InvalidInput), reading(reopened):
        reopened.records.show(nc, as_of=trail[0].time, version=1)


def test_unknown_records(store: Store, app: CapaApplication) -> None:
    with pytest.raises(NotFound), reading(app):
        app.records.show(f"NC-{YEAR}-0001")
    with pytest.raises(NotFound), reading(app):
        app.records.history(f"CA-{YEAR}-0042")
    with pytest.raises(InvalidInput), reading(app):
        app.records.show("NC-12")
    with store.acting(app, QUALITY_ENGINEER), pytest.raises(NotFound):
        app.nonconformities.cancel_nc(f"NC-{YEAR}-0009", reason="no such record")


# -- no snapshots (SPEC §9.1) ------------------------------------------------------------------


def test_a_long_ca_loads_every_version_from_its_events_and_takes_no_snapshot(
        store: Store, app: CapaApplication) -> None:
    ca = open_ca(store, app, [])
    with store.acting(app, OWNER):
        app.corrective_actions.investigate_ca(ca, method="other", root_cause="Many small causes",
                                              category="method")
        for n in range(1, 111):
            app.corrective_actions.plan_ca(ca, action=f"Action {n}", assignee=TECHNICIAN,
                                           due=days(n),
                                           action_type="corrective")
    latest = 112
    assert events_of(store, ca) == latest
    # A snapshot is a cache anyone who can write the store could forge: none is taken or read,
    # whatever the environment asks for.
    assert app.snapshots is None
    forced = CapaApplication(env={**store_env(parse_target(store.target), create=False),
                                  "IS_SNAPSHOTTING_ENABLED": "y",
                                  "CAPA_IS_SNAPSHOTTING_ENABLED": "y"})
    try:
        assert forced.snapshots is None
        reopened = store.app()
        for version in (1, 2, 3, 49, 50, 51, 99, 100, 101, 111, latest):
            with reading(reopened):
                view = reopened.records.show(ca, version=version)
            assert view.version == version
            assert len(view.items) == max(0, version - 2)
            with reading(forced):
                assert dump(view) == dump(forced.records.show(ca, version=version))
        with reading(reopened):
            current = reopened.records.show(ca)
        assert current.version == latest
        assert current.items[-1].number == "A110"
        with store.acting(reopened, QUALITY_MANAGER):
            assert reopened.corrective_actions.approve_ca(ca).version == latest + 1
    finally:
        forced.close()


# -- evidence --------------------------------------------------------------------------------


def test_evidence_is_stored_once_per_content(store: Store, app: CapaApplication,
                                             tmp_path: Path) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    report = tmp_path / "sort-report.csv"
    report.write_bytes(b"unit,result\n1,ok\n2,scrap\n")
    copy = tmp_path / "copy-of-report.csv"
    copy.write_bytes(report.read_bytes())
    with store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="Sorted", evidence=[report, copy])
    with store.acting(app, OWNER):
        app.corrective_actions.complete_action(ca, "A2", note="Replaced", evidence=[str(report)])
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    assert events_of(store, f"EVIDENCE-{digest}") == 1
    reopened = store.app()
    stored = reopened.repository.get(record_uuid(f"EVIDENCE-{digest}"))
    assert (stored.sha256, stored.size) == (digest, report.stat().st_size)
    assert base64.b64decode(stored.content_b64) == report.read_bytes()
    with reading(reopened):
        items = reopened.records.show(ca).items
    first = items[0].evidence
    assert [(e.name, e.size, e.sha256) for e in first] == [
        ("sort-report.csv", report.stat().st_size, digest),
        ("copy-of-report.csv", report.stat().st_size, digest)]
    assert first[0].media_type == "text/csv"
    assert [e.sha256 for e in items[1].evidence] == [digest]


def test_stored_evidence_can_be_read_back(store: Store, app: CapaApplication,
                                          tmp_path: Path) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    report = tmp_path / "sort-report.csv"
    report.write_bytes(b"unit,result\n1,ok\n")
    with store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="Sorted", evidence=[report])
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    with reading(store.app()):
        assert store.app().evidence.evidence_content(digest) == report.read_bytes()


def test_evidence_larger_than_25_mib_is_refused(store: Store, app: CapaApplication,
                                                tmp_path: Path) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    big = tmp_path / "scan.pdf"
    with big.open("wb") as f:
        f.truncate(MAX_EVIDENCE_BYTES + 1)
    before = store.event_count()
    with store.acting(app, TECHNICIAN), pytest.raises(InvalidInput, match="25 MiB"):
        app.corrective_actions.complete_action(ca, "A1", note="Sorted", evidence=[big])
    with store.acting(app, TECHNICIAN), pytest.raises(InvalidInput, match="does not exist"):
        app.corrective_actions.complete_action(ca, "A1", note="Sorted",
                                               evidence=[tmp_path / "missing.pdf"])
    assert store.event_count() == before
    with reading(store.app()):
        assert store.app().records.show(ca).items[0].state == "open"


def test_evidence_of_exactly_25_mib_is_accepted(store: Store, app: CapaApplication,
                                                tmp_path: Path) -> None:
    ca = open_ca(store, app, [nc_needing_ca(store, app)])
    plan_and_approve(store, app, ca)
    limit = tmp_path / "limit.bin"
    with limit.open("wb") as f:
        f.truncate(MAX_EVIDENCE_BYTES)
    with store.acting(app, TECHNICIAN):
        app.corrective_actions.complete_action(ca, "A1", note="Sorted", evidence=[limit])
    with reading(store.app()):
        evidence = store.app().records.show(ca).items[0].evidence
    assert [(e.name, e.size) for e in evidence] == [("limit.bin", MAX_EVIDENCE_BYTES)]
