"""Planned effectiveness checks, inconclusive outcomes, impact assessments (R11) and the
store's profile through the command line (SPEC §12): results, and every refusal exiting with
its code and writing nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Capa

CRITERIA = "No cracked housings in 3 consecutive lots"


def _planned(capa: Capa, ca: str, due_in: int = 30) -> dict[str, Any]:
    return capa.write("ca", "plan-check", ca, "--criteria", CRITERIA, "--method",
                      "100% visual inspection", "--due", capa.day(due_in), user=capa.owner)


def _profile(capa: Capa, profile: str) -> None:
    capa.write("store", "profile", profile, "--reason", "Certified to ISO 13485:2016")


def test_a_planned_check_is_answered_by_the_verification(capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    planned = _planned(capa, ca)
    assert planned["status"] == "implemented"
    capa.write("ca", "verify", ca, "--effective", "--note", "3 lots clean", user=capa.verifier)
    record = capa.run("--json", "ca", "show", ca).json()
    [check] = record["checks"]
    assert (check["criteria"], check["method"], check["due"], check["state"]) == (
        CRITERIA, "100% visual inspection", capa.day(30), "effective")
    assert check["planned_by"] == capa.owner
    assert record["verifications"][0]["criteria"] == CRITERIA
    shown = capa.run("ca", "show", ca)
    assert CRITERIA in shown.stdout and "effective" in shown.stdout


def test_a_ca_without_a_planned_check_shows_none(capa: Capa) -> None:
    ca = capa.verified_ca(capa.assessed_nc())
    record = capa.run("--json", "ca", "show", ca).json()
    assert "checks" not in record and "impacts" not in record
    assert "criteria" not in record["verifications"][0]


def test_an_inconclusive_check_is_extended_signed_and_the_ca_stays_implemented(
        capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    _planned(capa, ca, due_in=10)
    result = capa.write("ca", "verify", ca, "--inconclusive", "--note", "One lot so far",
                        "--due", capa.day(40), "--reason", "Production paused",
                        user=capa.verifier)
    assert (result["status"], result["check_due"]) == ("implemented", capa.day(40))
    record = capa.run("--json", "ca", "show", ca).json()
    [extension] = record["checks"][0]["extensions"]
    assert (extension["from"], extension["to"], extension["reason"]) == (
        capa.day(10), capa.day(40), "Production paused")
    assert extension["signature"]["meaning"] == "verification"
    assert extension["signature"]["user_id"] == capa.verifier
    assert record["verifications"] == []
    trail = capa.run("--json", "history", ca).json()
    assert trail[-1]["event_type"] == "EffectivenessInconclusive"
    assert trail[-1]["signature"]["kind"] == "digital"
    assert capa.run("audit", "verify").code == 0
    # The extended check is then answered like any other.
    capa.write("ca", "verify", ca, "--effective", "--note", "3 lots clean", user=capa.verifier)
    record = capa.run("--json", "ca", "show", ca).json()
    assert record["checks"][0]["state"] == "effective"


def test_inconclusive_refusals_write_nothing(capa: Capa) -> None:
    ca = capa.implemented_ca(capa.assessed_nc())
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "Too early", "--due",
                 capa.day(40), "--reason", "Paused", code=1, rule="R7", user=capa.verifier)
    _planned(capa, ca, due_in=10)
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "Too early", "--due",
                 capa.day(5), "--reason", "Paused", code=1, rule="R5", user=capa.verifier)
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "Too early", "--due",
                 capa.day(40), "--reason", "  ", code=1, rule="R5", user=capa.verifier)
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "Too early", "--due",
                 capa.day(40), "--reason", "Paused", code=4, user=capa.owner)
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "Too early",
                 code=2, user=capa.verifier)
    capa.refused("ca", "verify", ca, "--effective", "--note", "x", "--due", capa.day(40),
                 code=2, user=capa.verifier)
    capa.refused("ca", "verify", ca, "--inconclusive", "--note", "x", "--due", "40/12/2026",
                 "--reason", "Paused", code=2, user=capa.verifier)


def test_replanning_a_check_needs_a_reason_and_keeps_the_first(capa: Capa) -> None:
    ca = capa.approved_ca()
    _planned(capa, ca)
    capa.refused("ca", "plan-check", ca, "--criteria", "Fewer cracks", "--due", capa.day(5),
                 code=1, rule="R6", user=capa.owner)
    capa.write("ca", "plan-check", ca, "--criteria", "Zero cracks in 5 lots", "--due",
               capa.day(60), "--reason", "Customer asked for 5 lots", user=capa.owner)
    checks = capa.run("--json", "ca", "show", ca).json()["checks"]
    assert [(c["criteria"], c["state"]) for c in checks] == [
        (CRITERIA, "replaced"), ("Zero cracks in 5 lots", "planned")]
    assert checks[1]["reason"] == "Customer asked for 5 lots"


@pytest.mark.parametrize(("args", "code", "user"), [
    (("--criteria", " ", "--due", "+30"), 2, "owner"),
    (("--criteria", "x", "--due", "2026-13-01"), 2, "owner"),
    (("--criteria", "x", "--due", "-400"), 1, "owner"),
    (("--criteria", "x", "--due", "+30", "--method", "line\none"), 2, "owner"),
    (("--criteria", "x", "--due", "+30"), 4, "reporter"),
    (("--criteria", "x", "--due", "+30"), 4, "technician"),
])
def test_plan_check_refusals_write_nothing(capa: Capa, args: tuple[str, ...], code: int,
                                           user: str) -> None:
    ca = capa.approved_ca()
    resolved = tuple(capa.day(int(a)) if a[:1] in "+-" and a[1:].isdigit() else a for a in args)
    capa.refused("ca", "plan-check", ca, *resolved, code=code, user=getattr(capa, user))


def test_a_closed_ca_takes_no_check_and_a_missing_one_is_not_found(capa: Capa) -> None:
    ca = capa.verified_ca(capa.assessed_nc())
    capa.write("ca", "close", ca)
    capa.refused("ca", "plan-check", ca, "--criteria", "x", "--due", capa.day(5), code=1,
                 rule="R7", user=capa.owner)
    capa.refused("ca", "plan-check", f"CA-{capa.year}-0999", "--criteria", "x", "--due",
                 capa.day(5), code=3, user=capa.owner)
    capa.refused("ca", "impact", f"CA-{capa.year}-0999", "--statement", "x", code=3)


def test_an_iso9001_store_closes_without_an_impact_assessment(capa: Capa) -> None:
    assert capa.run("--json", "store", "info").json()["profile"] == "iso9001"
    ca = capa.verified_ca(capa.assessed_nc())
    assert capa.write("ca", "close", ca)["status"] == "closed"


def test_r11_an_iso13485_store_closes_a_ca_only_after_its_impact_assessment(
        capa: Capa) -> None:
    _profile(capa, "iso13485")
    ca = capa.verified_ca(capa.assessed_nc())
    error = capa.refused("ca", "close", ca, code=1, rule="R11")
    assert "8.5.2 e" in error["message"] and f"capa ca impact {ca}" in error["message"]
    assessed = capa.write("ca", "impact", ca, "--statement", "Like-for-like insert; the "
                          "validated moulding window is unchanged", "--risk-file",
                          "RMF-017 rev 4", "--change", "DCO-2291", "--change", "DCO-2291",
                          "--change", "WI-88 rev C", "--training", "TR-0456",
                          user=capa.owner)
    assert assessed["status"] == "verified"
    [impact] = capa.run("--json", "ca", "show", ca).json()["impacts"]
    assert (impact["risk_file"], impact["changes"], impact["training"], impact["by"]) == (
        "RMF-017 rev 4", ["DCO-2291", "WI-88 rev C"], ["TR-0456"], capa.owner)
    assert capa.write("ca", "close", ca)["status"] == "closed"
    assert capa.run("audit", "verify").code == 0


def test_r11_a_new_iteration_needs_its_own_impact_assessment(capa: Capa) -> None:
    _profile(capa, "iso13485")
    ca = capa.implemented_ca(capa.assessed_nc())
    capa.write("ca", "impact", ca, "--statement", "No effect on safety", user=capa.owner)
    capa.write("ca", "verify", ca, "--not-effective", "--note", "Recurred", user=capa.verifier)
    capa.write("ca", "investigate", ca, "--method", "ishikawa", "--root-cause", "Resin moisture",
               "--category", "material", user=capa.owner)
    capa.write("ca", "plan", ca, "--action", "Dry resin", "--assignee", capa.technician,
               "--due", capa.day(3), "--type", "corrective", user=capa.owner)
    capa.write("ca", "approve", ca)
    capa.write("ca", "complete", ca, "A3", "--note", "Dryer installed", user=capa.technician)
    capa.write("ca", "verify", ca, "--effective", "--note", "Clean", user=capa.verifier)
    capa.refused("ca", "close", ca, code=1, rule="R11")
    capa.write("ca", "impact", ca, "--statement", "Dryer validated (IQ/OQ)", user=capa.owner)
    assert capa.write("ca", "close", ca)["status"] == "closed"


@pytest.mark.parametrize(("args", "code", "user"), [
    (("--statement", "  "), 2, "owner"),
    (("--statement", "ok", "--risk-file", "RMF\n1"), 2, "owner"),
    (("--statement", "ok", "--change", "x" * 1001), 2, "owner"),
    (("--statement", "ok"), 4, "reporter"),
    (("--statement", "ok"), 4, "technician"),
])
def test_impact_refusals_write_nothing(capa: Capa, args: tuple[str, ...], code: int,
                                       user: str) -> None:
    ca = capa.approved_ca()
    capa.refused("ca", "impact", ca, *args, code=code, user=getattr(capa, user))


def test_an_open_ca_has_no_actions_to_assess_yet(capa: Capa) -> None:
    ca = capa.ca()
    capa.refused("ca", "impact", ca, "--statement", "ok", code=1, rule="R7", user=capa.owner)


def test_the_profile_changes_only_by_an_administrator_with_a_reason(capa: Capa) -> None:
    capa.refused("store", "profile", "iso13485", "--reason", "x", code=4,
                 user=capa.quality_engineer)
    capa.refused("store", "profile", "iso13485", "--reason", " ", code=1, rule="R6")
    capa.refused("store", "profile", "iso9001", "--reason", "already", code=2)
    capa.refused("store", "profile", "iso14971", "--reason", "x", code=2)
    changed = capa.write("store", "profile", "iso13485", "--reason", "Certified")
    assert changed["profile"] == "iso13485"
    trail = capa.run("--json", "history", "STORE").json()
    assert trail[-1]["event_type"] == "ProfileChanged"
    assert trail[-1]["reason"] == "Certified"
    assert capa.run("--json", "store", "info", user=capa.reporter).json()["profile"] == \
        "iso13485"


def test_init_chooses_the_profile(fresh: Capa) -> None:
    outcome = fresh.run("--json", "init", "--admin", "mhernandez", "--profile", "iso13485",
                        user="mhernandez")
    assert outcome.code == 0, outcome.stderr
    assert outcome.json()["profile"] == "iso13485"
    assert fresh.run("--json", "store", "info", user="mhernandez").json()["profile"] == \
        "iso13485"


def test_init_refuses_an_unknown_profile_creating_nothing(fresh: Capa) -> None:
    outcome = fresh.run("--json", "init", "--admin", "mhernandez", "--profile", "iso9002",
                        user="mhernandez")
    assert outcome.code == 2
    assert not fresh.exists()


def test_a_planned_check_past_its_date_is_overdue_until_answered(capa: Capa) -> None:
    import datetime as dt

    import time_machine

    ca = capa.implemented_ca(capa.assessed_nc())
    _planned(capa, ca, due_in=30)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=45)

    def overdue() -> list[dict[str, Any]]:
        with time_machine.travel(later, tick=False):
            rows: list[dict[str, Any]] = capa.run("--json", "overdue").json()
        return [r for r in rows if r["ca"] == ca]

    assert capa.run("--json", "overdue").json()[0]["kind"] == "awaiting-verification"
    late = [r for r in overdue() if r["kind"] == "check-overdue"]
    assert [(r["due"], r["days_overdue"], r["title"]) for r in late] == [
        (capa.day(30), 15, CRITERIA)]
    # Extended when inconclusive, it is no longer late at that date.
    capa.write("ca", "verify", ca, "--inconclusive", "--note", "One lot", "--due",
               capa.day(90), "--reason", "Production paused", user=capa.verifier)
    assert [r["kind"] for r in overdue()] == ["awaiting-verification"]
    capa.write("ca", "verify", ca, "--effective", "--note", "Clean", user=capa.verifier)
    assert overdue() == []


# -- against someone who can write the store -----------------------------------------------


def _inconclusive_row(capa: Capa) -> tuple[int, bytes]:
    from tests.support.backends import event_rows

    [(position, state)] = [(p, s) for p, _, _, topic, s in event_rows(capa.target)
                           if topic.endswith("CorrectiveAction.EffectivenessInconclusive")]
    return position, state


def _extended(capa: Capa) -> str:
    ca = capa.implemented_ca(capa.assessed_nc())
    _planned(capa, ca, due_in=10)
    capa.write("ca", "verify", ca, "--inconclusive", "--note", "One lot so far", "--due",
               capa.day(40), "--reason", "Production paused", user=capa.verifier)
    return ca


def test_a_forged_inconclusive_signature_is_caught_without_a_checkpoint(capa: Capa) -> None:
    from tests.support.backends import query

    ca = _extended(capa)
    position, state = _inconclusive_row(capa)
    signature = json.loads(state)["signature"]
    forged = state.replace(signature["content_sha256"].encode(), b"0" * 64)
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?", forged, position)
    done = capa.run("audit", "verify")
    assert done.code == 6, done.stderr
    assert ca in done.stderr and "verification signature" in done.stderr


def test_a_moved_check_date_is_caught_against_the_checkpoint(capa: Capa) -> None:
    from tests.support.backends import query

    ca = _extended(capa)
    assert capa.run("audit", "checkpoint").code == 0
    position, state = _inconclusive_row(capa)
    moved = state.replace(capa.day(40).encode(), capa.day(400).encode())
    assert moved != state
    query(capa.target, "UPDATE stored_events SET state = ? WHERE rowid = ?", moved, position)
    done = capa.run("audit", "verify")
    assert done.code == 6, done.stderr
    assert ca in done.stderr or "position" in done.stderr


def test_a_check_signed_in_another_users_name_with_the_library_is_caught(capa: Capa) -> None:
    """Someone with the store and the library, but not the verifier's password, records an
    inconclusive check in the verifier's name."""
    from capa.app.store import open_store
    from capa.domain.corrective_action import CorrectiveAction
    from capa.domain.record import actor_id

    ca = capa.implemented_ca(capa.assessed_nc())
    _planned(capa, ca, due_in=10)
    app = open_store(capa.target)
    token = actor_id.set(capa.verifier)
    try:
        record = app.load(CorrectiveAction, ca)
        record.inconclusive("Forged", [], {
            "user_id": capa.verifier, "full_name": "Roman Kowalski", "meaning": "verification",
            "content_sha256": record.content_digest(), "signed_version": record.version},
            capa.day(90), "Forged")
        app.save(record)
    finally:
        actor_id.reset(token)
        app.close()
    done = capa.run("audit", "verify")
    assert done.code == 6, done.stderr
    assert "no digital signature" in done.stderr


def test_the_dashboard_counts_the_checks_due_in_30_days(capa: Capa) -> None:
    import re

    soon, later = capa.approved_ca(), capa.approved_ca()
    capa.write("ca", "plan-check", soon, "--criteria", CRITERIA, "--due", capa.day(10),
               user=capa.owner)
    capa.write("ca", "plan-check", later, "--criteria", CRITERIA, "--due", capa.day(90),
               user=capa.owner)
    assert capa.run("dashboard", "--out", "d.html").code == 0
    page = (capa.folder / "d.html").read_text(encoding="utf-8")
    kpi = re.search(r'class="kpi">Effectiveness checks due in 30 days<b>(\d+)</b>', page)
    assert kpi is not None and kpi.group(1) == "1", page[:2000]
